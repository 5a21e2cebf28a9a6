use super::*;

fn us() -> Region {
    "US".parse().unwrap()
}

#[test]
fn international_input_is_normalised() {
    let p = PhoneE164::parse_international("+91 98765 43210").unwrap();
    assert_eq!(p.as_str(), "+919876543210");
    assert_eq!(p.digits(), "919876543210");
    assert!(
        PhoneE164::parse_international("98765 43210")
            .unwrap_err()
            .contains("E.164")
    );
    assert!(
        PhoneE164::parse_international("+1 555")
            .unwrap_err()
            .contains("expected an E.164 number"),
    );
}

#[test]
fn caller_ids_in_national_format_use_the_region() {
    let p = PhoneE164::from_caller_id("(415) 555-2671", us()).unwrap();
    assert_eq!(p.as_str(), "+14155552671");
    let india: Region = "in".parse().unwrap();
    let p = PhoneE164::from_caller_id("09876543210", india).unwrap();
    assert_eq!(p.as_str(), "+919876543210");
    let p = PhoneE164::from_caller_id("sip:+14155552671@pbx.example;user=phone", us()).unwrap();
    assert_eq!(p.as_str(), "+14155552671");
}

#[test]
fn withheld_short_and_invalid_callers_are_refused_with_a_reason() {
    assert!(matches!(
        PhoneE164::from_caller_id("anonymous", us()),
        Err(Unusable::Withheld(_))
    ));
    assert!(matches!(
        PhoneE164::from_caller_id("", us()),
        Err(Unusable::Withheld(_))
    ));
    assert!(matches!(
        PhoneE164::from_caller_id("+266696687", us()),
        Err(Unusable::Withheld(_))
    ));
    assert!(matches!(
        PhoneE164::from_caller_id("1004", us()),
        Err(Unusable::ShortCode(_))
    ));
    assert!(matches!(
        PhoneE164::from_caller_id("+1 555 000 0000", us()),
        Err(Unusable::Invalid(_))
    ));
    let gb: Region = "GB".parse().unwrap();
    assert!(matches!(
        PhoneE164::from_caller_id("020 7946 0000", gb),
        Err(Unusable::NotMobile { .. })
    ));
}

#[test]
fn wa_ids_become_e164() {
    assert_eq!(
        PhoneE164::from_wa_id("16505551234").unwrap().as_str(),
        "+16505551234"
    );
    assert!(PhoneE164::from_wa_id("US.1234").is_none());
}

#[test]
fn garbage_never_panics() {
    for s in [
        "+dwPAA;phone-context=x",
        "++++",
        "+0000000000000000000000",
        "tel:",
        "sip:@",
        "١٢٣٤٥٦٧٨",
    ] {
        let _ = PhoneE164::from_caller_id(s, us());
        let _ = PhoneE164::parse_international(s);
    }
}
