//! `GET /api/v1/stats`: exact sums per unit, inspector scoping, the in/out balance of a
//! period, the farmland layers against the targets.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use axum::http::StatusCode;
use common::{patch, service, TestService};
use serde_json::{json, Value};

/// Five patches: four in county 640502 (one rectified, one a false positive), one in 640521;
/// returns the farmland layer's id.
async fn seeded(s: &TestService) -> i64 {
    let mut p1 = patch("a1", "fishpond", "640502101001", 105.10, 37.50, 12.5);
    p1.admin.county_name = Some("沙坡头区".into());
    let patches = vec![
        p1,
        patch("a2", "abandonment", "640502104002", 105.20, 37.52, 3.25),
        patch("b1", "construction", "640521100003", 105.60, 37.30, 7.0),
        patch("a3", "tree_planting", "640502101005", 105.11, 37.51, 2.0),
        patch("a4", "non_grain_pbf", "640502104002", 105.21, 37.53, 4.5),
    ];
    let (farmland, _) = s.seed(patches).await;
    for (id, verdict) in [(4, "false_positive"), (5, "rectified")] {
        let (status, body) = s
            .send(
                "POST",
                &format!("/api/v1/changes/{id}/verdicts"),
                Some(&s.tokens.admin),
                Some(&json!({ "verdict": verdict }).to_string()),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    farmland
}

fn statuses(open: (i64, f64), fp: (i64, f64), rectified: (i64, f64)) -> Value {
    json!({
        "open": {"patches": open.0, "mu": open.1},
        "confirmed": {"patches": 0, "mu": 0.0},
        "false_positive": {"patches": fp.0, "mu": fp.1},
        "rectified": {"patches": rectified.0, "mu": rectified.1},
    })
}

fn balance(out: (i64, f64), restored: (i64, f64), net: f64) -> Value {
    json!({
        "out": {"patches": out.0, "mu": out.1},
        "in": {"patches": restored.0, "mu": restored.1},
        "net_mu": net,
    })
}

fn county_640502() -> Value {
    json!({
        "code": "640502",
        "name": "沙坡头区",
        "patches": 4,
        "mu": 22.25,
        "by_kind": {
            "abandonment": {"patches": 1, "mu": 3.25},
            "fishpond": {"patches": 1, "mu": 12.5},
            "non_grain_pbf": {"patches": 1, "mu": 4.5},
            "tree_planting": {"patches": 1, "mu": 2.0},
        },
        "by_status": statuses((2, 15.75), (1, 2.0), (1, 4.5)),
        // Fishpond and non-grain out (the false-positive tree planting is not; abandonment
        // is idle cropland); the rectified non-grain patch back in.
        "balance": balance((2, 17.0), (1, 4.5), -12.5),
    })
}

fn county_640521() -> Value {
    json!({
        "code": "640521",
        "name": null,
        "patches": 1,
        "mu": 7.0,
        "by_kind": {"construction": {"patches": 1, "mu": 7.0}},
        "by_status": statuses((1, 7.0), (0, 0.0), (0, 0.0)),
        "balance": balance((1, 7.0), (0, 0.0), -7.0),
    })
}

#[tokio::test]
async fn stats_sum_patches_per_county_with_the_balance_and_the_targets() {
    let s = service().await;
    let farmland = seeded(&s).await;
    let (status, body) = s
        .send("GET", "/api/v1/stats", Some(&s.tokens.centre), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body,
        json!({
            "level": "county",
            "region": null,
            "batch": null,
            "from": null,
            "to": null,
            "units": [county_640502(), county_640521()],
            "totals": {
                "patches": 5,
                "mu": 29.25,
                "by_kind": {
                    "abandonment": {"patches": 1, "mu": 3.25},
                    "construction": {"patches": 1, "mu": 7.0},
                    "fishpond": {"patches": 1, "mu": 12.5},
                    "non_grain_pbf": {"patches": 1, "mu": 4.5},
                    "tree_planting": {"patches": 1, "mu": 2.0},
                },
                "by_status": statuses((3, 22.75), (1, 2.0), (1, 4.5)),
                "balance": balance((3, 24.0), (1, 4.5), -19.5),
            },
            // The seeded layer: 30 mu of cropland, 15 of PBF.
            "targets": {
                "layers": [farmland],
                "cropland": {"target_mu": 4401200.0, "area_mu": 30.0, "gap_mu": 4401170.0},
                "pbf": {"target_mu": 3434500.0, "area_mu": 15.0, "gap_mu": 3434485.0},
            },
        })
    );
}

#[tokio::test]
async fn an_inspector_gets_only_their_units_and_no_targets() {
    let s = service().await;
    seeded(&s).await;
    let (status, body) = s
        .send("GET", "/api/v1/stats", Some(&s.tokens.inspector), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["units"], json!([county_640502()]));
    assert_eq!(body["totals"]["patches"], 4);
    assert_eq!(body["targets"], Value::Null);
    // Naming the other county's region does not widen the scope.
    let (_, other) = s
        .send(
            "GET",
            "/api/v1/stats?region=640521",
            Some(&s.tokens.inspector),
            None,
        )
        .await;
    assert_eq!(other["units"], json!([]));
    assert_eq!(other["totals"]["patches"], 0);
    let (_, theirs) = s
        .send(
            "GET",
            "/api/v1/stats?level=township",
            Some(&s.tokens.inspector_other),
            None,
        )
        .await;
    let codes: Vec<&Value> = theirs["units"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| &u["code"])
        .collect();
    assert_eq!(codes, vec![&json!("640521100")]);
    assert_eq!(theirs["units"][0]["mu"], 7.0);
}

#[tokio::test]
async fn levels_and_regions_group_by_the_patches_codes() {
    let s = service().await;
    seeded(&s).await;
    let admin = Some(s.tokens.admin.as_str());
    let (_, village) = s
        .send(
            "GET",
            "/api/v1/stats?level=village&region=640502104",
            admin,
            None,
        )
        .await;
    let units = village["units"].as_array().unwrap();
    assert_eq!(units.len(), 1, "{village}");
    assert_eq!(units[0]["code"], "640502104002");
    assert_eq!(
        (units[0]["patches"].clone(), units[0]["mu"].clone()),
        (json!(2), json!(7.75))
    );
    assert_eq!(units[0]["balance"], balance((1, 4.5), (1, 4.5), 0.0));
    let (_, township) = s
        .send("GET", "/api/v1/stats?level=township", admin, None)
        .await;
    let got: Vec<(Value, Value)> = township["units"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| (u["code"].clone(), u["mu"].clone()))
        .collect();
    assert_eq!(
        got,
        vec![
            (json!("640502101"), json!(14.5)),
            (json!("640502104"), json!(7.75)),
            (json!("640521100"), json!(7.0)),
        ]
    );
    // The seeded patches have no village-group code: one unit without a code.
    let (_, group) = s
        .send("GET", "/api/v1/stats?level=group", admin, None)
        .await;
    assert_eq!(group["units"].as_array().unwrap().len(), 1);
    assert_eq!(
        (
            group["units"][0]["code"].clone(),
            group["units"][0]["patches"].clone()
        ),
        (Value::Null, json!(5))
    );
    // Another batch: no patches, and its own (missing) layer is 404.
    let (status, none) = s.send("GET", "/api/v1/stats?batch=999", admin, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{none}");
    let (status, none) = s
        .send(
            "GET",
            "/api/v1/stats?batch=999",
            Some(&s.tokens.inspector),
            None,
        )
        .await;
    assert_eq!((status, none["units"].clone()), (StatusCode::OK, json!([])));
}

#[tokio::test]
async fn the_period_counts_patches_found_in_it_and_cropland_restored_in_it() {
    let s = service().await;
    seeded(&s).await;
    let admin = Some(s.tokens.admin.as_str());
    // The patches were found in January 2024; the rectified verdict is recorded today.
    s.raw
        .execute_raw("UPDATE patches SET created_at = '2024-01-10T08:00:00.000Z'")
        .await
        .unwrap();
    let (_, v) = s
        .send("GET", "/api/v1/changes/5/verdicts", admin, None)
        .await;
    let today = v["items"][0]["at"].as_str().unwrap()[..10].to_string();

    let (_, january) = s
        .send(
            "GET",
            "/api/v1/stats?from=2024-01-01&to=2024-01-31",
            admin,
            None,
        )
        .await;
    assert_eq!(january["totals"]["patches"], 5);
    assert_eq!(
        january["totals"]["balance"],
        balance((3, 24.0), (0, 0.0), -24.0)
    );
    let (_, now) = s
        .send(
            "GET",
            &format!("/api/v1/stats?from={today}&to={today}"),
            admin,
            None,
        )
        .await;
    assert_eq!(now["from"], json!(today));
    assert_eq!(
        now["units"],
        json!([{
            "code": "640502",
            "name": null,
            "patches": 0,
            "mu": 0.0,
            "by_kind": {},
            "by_status": statuses((0, 0.0), (0, 0.0), (0, 0.0)),
            "balance": balance((0, 0.0), (1, 4.5), 4.5),
        }])
    );
    let (_, before) = s
        .send("GET", "/api/v1/stats?to=2023-12-31", admin, None)
        .await;
    assert_eq!(before["units"], json!([]));
}

#[tokio::test]
async fn bad_stats_queries_are_400_json_errors() {
    let s = service().await;
    let admin = Some(s.tokens.admin.as_str());
    for (query, code, message) in [
        (
            "level=city",
            "bad_request",
            "level \"city\": one of county, township, village, group",
        ),
        (
            "from=2024-1-5",
            "bad_request",
            "from \"2024-1-5\": a day as YYYY-MM-DD",
        ),
        (
            "to=2024-02-30",
            "bad_request",
            "to \"2024-02-30\": a day as YYYY-MM-DD",
        ),
        (
            "from=2024-03-01&to=2024-02-01",
            "bad_request",
            "from 2024-03-01 is after to 2024-02-01",
        ),
    ] {
        let (status, body) = s
            .send("GET", &format!("/api/v1/stats?{query}"), admin, None)
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}");
        assert_eq!(body, json!({"code": code, "message": message}), "{query}");
    }
    for query in ["region=64a", "batch=x", "color=red"] {
        let (status, body) = s
            .send("GET", &format!("/api/v1/stats?{query}"), admin, None)
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}: {body}");
        assert!(
            ["bad_request", "bad_query"].contains(&body["code"].as_str().unwrap()),
            "{query}: {body}"
        );
    }
}
