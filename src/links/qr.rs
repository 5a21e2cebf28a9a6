//! QR codes as SVG, PNG and terminal text, drawn with the `qrcode` crate. PNG is written with
//! the `png` crate from the code's modules rather than through `image`, which would add a
//! whole image library to the binary for one grayscale picture.

use qrcode::{Color, EcLevel, QrCode};

/// Light modules around the code: the QR specification asks for four.
const QUIET_ZONE: usize = 4;

#[derive(Debug, thiserror::Error)]
#[error("this text does not fit in a QR code: {0}")]
pub struct TooLong(String);

/// Medium error correction: survives a crease or a smudge on a printed flyer.
fn code(data: &str) -> Result<QrCode, TooLong> {
    QrCode::with_error_correction_level(data.as_bytes(), EcLevel::M)
        .map_err(|e| TooLong(e.to_string()))
}

/// A scalable SVG image of at least `min_px` pixels square.
pub fn svg(data: &str, min_px: u32) -> Result<String, TooLong> {
    Ok(code(data)?
        .render::<qrcode::render::svg::Color>()
        .min_dimensions(min_px, min_px)
        .quiet_zone(true)
        .build())
}

/// A grayscale PNG, `scale` pixels per module.
pub fn png(data: &str, scale: usize) -> Result<Vec<u8>, TooLong> {
    let code = code(data)?;
    let (modules, colors) = (code.width(), code.to_colors());
    let scale = scale.clamp(1, 40);
    let side = (modules + 2 * QUIET_ZONE) * scale;
    let mut pixels = vec![255u8; side * side];
    for (i, color) in colors.iter().enumerate() {
        if *color != Color::Dark {
            continue;
        }
        let (x, y) = (i % modules + QUIET_ZONE, i / modules + QUIET_ZONE);
        for row in y * scale..(y + 1) * scale {
            pixels[row * side + x * scale..row * side + (x + 1) * scale].fill(0);
        }
    }
    let mut out = Vec::new();
    let side32 = u32::try_from(side).map_err(|_| TooLong("the image is too large".into()))?;
    let mut encoder = png::Encoder::new(&mut out, side32, side32);
    encoder.set_color(png::ColorType::Grayscale);
    encoder.set_depth(png::BitDepth::Eight);
    // Writing into a Vec fails only on a programming error (wrong data length), which the
    // arithmetic above rules out.
    let mut writer = encoder.write_header().map_err(|e| TooLong(e.to_string()))?;
    writer
        .write_image_data(&pixels)
        .map_err(|e| TooLong(e.to_string()))?;
    writer.finish().map_err(|e| TooLong(e.to_string()))?;
    Ok(out)
}

/// The code drawn with half-block characters, for a terminal (two modules per character).
pub fn terminal(data: &str) -> Result<String, TooLong> {
    Ok(code(data)?
        .render::<qrcode::render::unicode::Dense1x2>()
        .dark_color(qrcode::render::unicode::Dense1x2::Light)
        .light_color(qrcode::render::unicode::Dense1x2::Dark)
        .build())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn png_is_a_png_of_the_right_size_with_dark_finder_corners() {
        let bytes = png("https://wa.me/447700900123?text=Hi", 4).unwrap();
        let decoder = png::Decoder::new(std::io::Cursor::new(&bytes));
        let mut reader = decoder.read_info().unwrap();
        let mut buf = vec![0; reader.output_buffer_size().unwrap()];
        let info = reader.next_frame(&mut buf).unwrap();
        assert_eq!(info.width, info.height);
        let modules = code("https://wa.me/447700900123?text=Hi").unwrap().width();
        assert_eq!(info.width as usize, (modules + 8) * 4);
        let px = |x: usize, y: usize| buf[y * info.width as usize + x];
        assert_eq!(px(0, 0), 255, "the quiet zone is light");
        assert_eq!(px(16, 16), 0, "the top-left finder pattern starts after it");
    }

    #[test]
    fn svg_and_terminal_render() {
        let s = svg("hello", 200).unwrap();
        assert!(s.starts_with("<?xml") && s.contains("<svg"));
        assert!(terminal("hello").unwrap().contains('█'));
        assert!(svg(&"x".repeat(5000), 100).is_err());
    }
}
