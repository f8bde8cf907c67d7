//! `GET /api/v1/models[/{id}]`: the models the analyses run and their cards.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use axum::http::StatusCode;
use common::{service, TestService};
use gengdi_service::jobs::{
    CancelToken, JobError, JobExecutor, JobSpec, Jobs, ModelInfo, ProgressSink,
};
use gengdi_service::store::{NewPatch, Store};
use gengdi_service::AppState;
use serde_json::json;
use std::sync::Arc;

/// Runs nothing; holds two model cards.
struct TwoModels;

fn card(task: &str, id: &str) -> serde_json::Value {
    json!({"id": id, "task": task, "created": "2026-11-01T00:00:00Z", "metrics": {"overall": {"overall_accuracy": 0.91, "n": 1200}}})
}

impl JobExecutor for TwoModels {
    fn models(&self) -> Vec<ModelInfo> {
        vec![
            ModelInfo {
                task: "landcover".into(),
                id: "lc-3f2a".into(),
                active: None,
            },
            ModelInfo {
                task: "croptype".into(),
                id: "ct-77b0".into(),
                active: None,
            },
        ]
    }

    fn model_card(&self, id: &str) -> Option<serde_json::Value> {
        match id {
            "lc-3f2a" => Some(card("landcover", id)),
            "ct-77b0" => Some(card("croptype", id)),
            _ => None,
        }
    }

    fn run(
        &self,
        _: &JobSpec,
        _: &ProgressSink,
        _: &CancelToken,
    ) -> Result<Vec<NewPatch>, JobError> {
        Err(JobError::Cancelled)
    }
}

async fn with_models() -> TestService {
    let s = service().await;
    let store: Arc<dyn Store> = s.store.clone();
    let jobs = Arc::new(Jobs::new(store.clone(), Arc::new(TwoModels)));
    let state = AppState::new(&s.config, store, jobs).unwrap();
    TestService { state, ..s }
}

#[tokio::test]
async fn a_model_card_is_served_by_the_id_the_list_names() {
    let s = with_models().await;
    let (status, list) = s
        .send("GET", "/api/v1/models", Some(&s.tokens.researcher), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        list,
        json!({"items": [{"task": "landcover", "id": "lc-3f2a"}, {"task": "croptype", "id": "ct-77b0"}]})
    );
    for (id, task) in [("lc-3f2a", "landcover"), ("ct-77b0", "croptype")] {
        let (status, body) = s
            .send(
                "GET",
                &format!("/api/v1/models/{id}"),
                Some(&s.tokens.centre),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body, card(task, id));
    }
    // Exact ids only; an inspector may not read cards.
    let (status, body) = s
        .send("GET", "/api/v1/models/lc-3f", Some(&s.tokens.admin), None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(
        body,
        json!({"code": "not_found", "message": "no model \"lc-3f\" among the models the analyses run"})
    );
    let (status, body) = s
        .send(
            "GET",
            "/api/v1/models/lc-3f2a",
            Some(&s.tokens.inspector),
            None,
        )
        .await;
    assert_eq!(
        (status, body["code"].clone()),
        (StatusCode::FORBIDDEN, json!("forbidden"))
    );
}
