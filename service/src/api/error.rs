//! Every error a client sees: a status and a JSON body `{code, message, details?}`.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use schemars::JsonSchema;
use serde::Serialize;

use crate::error::ServiceError;

/// An error response.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    pub status: StatusCode,
    /// A stable, machine-readable name (`unauthorized`, `not_found`, …).
    pub code: &'static str,
    pub message: String,
    pub details: Option<serde_json::Value>,
}

/// The body of every error response (`Error` in the OpenAPI document).
#[derive(Debug, Serialize, JsonSchema)]
#[schemars(rename = "Error")]
pub struct ErrorBody<'a> {
    /// A stable, machine-readable name (`unauthorized`, `not_found`, `bad_request`, …).
    pub code: &'a str,
    /// What went wrong, for people.
    pub message: &'a str,
    /// What the error is about (the value refused, the roles allowed, …), when there is more.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub details: Option<&'a serde_json::Value>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
            details: None,
        }
    }

    pub fn with_details(mut self, details: serde_json::Value) -> ApiError {
        self.details = Some(details);
        self
    }

    pub fn unauthorized(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }

    pub fn forbidden(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    pub fn conflict(code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::CONFLICT, code, message)
    }

    pub fn internal(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            code: self.code,
            message: &self.message,
            details: self.details.as_ref(),
        };
        let text = serde_json::to_string(&body).unwrap_or_else(|_| {
            r#"{"code":"internal","message":"cannot write the error"}"#.to_string()
        });
        let mut res = (self.status, text).into_response();
        res.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        if self.status == StatusCode::UNAUTHORIZED {
            res.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        res
    }
}

impl From<ServiceError> for ApiError {
    fn from(e: ServiceError) -> ApiError {
        match &e {
            ServiceError::OutsideImportRoot { .. } => ApiError::new(
                StatusCode::FORBIDDEN,
                "path_outside_import_root",
                e.to_string(),
            ),
            ServiceError::NotUnderImportRoot { .. } => {
                ApiError::new(StatusCode::BAD_REQUEST, "path_not_found", e.to_string())
            }
            ServiceError::Invalid(_) => ApiError::bad_request(e.to_string()),
            ServiceError::TooLarge { .. } => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "input_too_large",
                e.to_string(),
            ),
            // The layer or the scenes a request named cannot be used as they are.
            ServiceError::Inference(_) => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "unreadable_input",
                e.to_string(),
            ),
            ServiceError::StoreUnavailable(_) => {
                tracing::warn!("{e}");
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "store_unavailable",
                    "the database cannot be reached; try again shortly",
                )
            }
            _ => {
                tracing::error!("{e}");
                ApiError::internal("internal error; the server log has the cause")
            }
        }
    }
}

/// The handlers' result.
pub type ApiResult<T> = std::result::Result<T, ApiError>;
