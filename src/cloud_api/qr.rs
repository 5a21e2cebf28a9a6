//! Meta's QR codes and short links (`/{phone-number-id}/message_qrdls`): a code Meta hosts
//! (`https://wa.me/message/<code>`) that opens a chat with a prefilled message of up to 140
//! characters. Ringback's own links ([`crate::links`]) do the same without Meta; these are for
//! a business that wants Meta's short link as well.

use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::Client;
use super::calling::GraphError;

/// The image Meta draws for a new code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageFormat {
    Svg,
    Png,
}

impl ImageFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            ImageFormat::Svg => "SVG",
            ImageFormat::Png => "PNG",
        }
    }
}

/// One QR code as Meta describes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QrCode {
    pub code: String,
    pub prefilled_message: String,
    pub deep_link_url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub qr_image_url: Option<String>,
}

fn parse(v: Value) -> Result<QrCode, GraphError> {
    serde_json::from_value(v).map_err(|e| GraphError {
        http_status: Some(200),
        code: None,
        message: format!("Meta's QR code answer is not in the documented shape: {e}"),
    })
}

impl Client {
    /// `POST /{phone-number-id}/message_qrdls {prefilled_message, generate_qr_image}`.
    pub async fn create_qr(
        &self,
        phone_number_id: &str,
        token: &SecretString,
        prefilled_message: &str,
        format: ImageFormat,
    ) -> Result<QrCode, GraphError> {
        let body =
            json!({"prefilled_message": prefilled_message, "generate_qr_image": format.as_str()});
        let v = self
            .graph(
                reqwest::Method::POST,
                &format!("{phone_number_id}/message_qrdls"),
                token,
                Some(&body),
            )
            .await?;
        parse(v)
    }

    /// `GET /{phone-number-id}/message_qrdls`: the number's codes (first page; Meta allows
    /// 2,000 per number).
    pub async fn list_qrs(
        &self,
        phone_number_id: &str,
        token: &SecretString,
    ) -> Result<Vec<QrCode>, GraphError> {
        let v = self
            .graph(
                reqwest::Method::GET,
                &format!("{phone_number_id}/message_qrdls"),
                token,
                None,
            )
            .await?;
        v.get("data")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .map(|item| parse(item.clone()))
            .collect()
    }

    /// `DELETE /{phone-number-id}/message_qrdls/{code}`.
    pub async fn delete_qr(
        &self,
        phone_number_id: &str,
        token: &SecretString,
        code: &str,
    ) -> Result<(), GraphError> {
        self.graph(
            reqwest::Method::DELETE,
            &format!("{phone_number_id}/message_qrdls/{code}"),
            token,
            None,
        )
        .await
        .map(|_| ())
    }
}
