//! `GET /api/v1/changes?sort=…`: every order pages exactly by keyset (the pages, put
//! together, are the whole filtered selection in that order, ties by ascending id, each patch
//! once), cursors carry the exact value they sort by, and a cursor or sort that does not fit
//! is a clean 400; exports page through the selection in the order asked for.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use axum::http::StatusCode;
use common::{patch, service, TestService};
use gengdi_service::auth::Scope;
use gengdi_service::error::ServiceError;
use gengdi_service::store::{ChangeCursor, ChangeFilter, ChangeSort, NewPatch};
use serde_json::Value;

/// 0.1 + 0.2: the f64 just above 0.3, which a cursor that rounded its value would lose.
const JUST_ABOVE_0_3: f64 = 0.1 + 0.2;

/// (kind, area_mu, confidence) of patches 1 to 10; ties in both values, within and across
/// kinds.
const PATCHES: [(&str, f64, f64); 10] = [
    ("fishpond", 5.0, 0.9),             // 1
    ("construction", 3.25, 0.8),        // 2
    ("fishpond", 5.0, 0.7),             // 3
    ("fishpond", 12.5, 0.9),            // 4
    ("construction", 5.0, 0.9),         // 5
    ("fishpond", JUST_ABOVE_0_3, 0.75), // 6
    ("fishpond", 3.25, 0.9),            // 7
    ("fishpond", 5.0, 0.7),             // 8
    ("fishpond", 0.3, 0.75),            // 9
    ("fishpond", 12.5, 0.55),           // 10
];

fn patches() -> Vec<NewPatch> {
    PATCHES
        .iter()
        .enumerate()
        .map(|(i, &(kind, mu, conf))| {
            let mut p = patch(
                &format!("s{}", i + 1),
                kind,
                "640502101001",
                105.0 + i as f64 * 0.01,
                37.5,
                mu,
            );
            p.confidence = conf;
            p
        })
        .collect()
}

/// Every page of `query` (with `limit`): the ids in order, and the `next_cursor`s.
async fn all_pages(s: &TestService, query: &str, limit: u32) -> (Vec<i64>, Vec<String>) {
    let admin = Some(s.tokens.admin.as_str());
    let (mut ids, mut cursors) = (Vec::new(), Vec::new());
    let mut cursor: Option<String> = None;
    loop {
        let uri = match &cursor {
            Some(c) => format!("/api/v1/changes?{query}&limit={limit}&cursor={c}"),
            None => format!("/api/v1/changes?{query}&limit={limit}"),
        };
        let (status, page) = s.send("GET", &uri, admin, None).await;
        assert_eq!(status, StatusCode::OK, "{uri}: {page}");
        let items = page["items"].as_array().unwrap();
        assert!(items.len() <= limit as usize, "{uri}");
        ids.extend(items.iter().map(|p| p["id"].as_i64().unwrap()));
        match &page["next_cursor"] {
            Value::String(c) => {
                assert_eq!(
                    items.len(),
                    limit as usize,
                    "{uri}: a short page before the end"
                );
                cursors.push(c.clone());
                cursor = Some(c.clone());
            }
            Value::Null => return (ids, cursors),
            other => panic!("{uri}: next_cursor {other}"),
        }
        assert!(ids.len() <= PATCHES.len(), "{query}: runs on past the end");
    }
}

/// The ids of `kind` (all when `None`) in the order `sort` describes, computed here.
fn sorted_by_rule(sort: &str, kind: Option<&str>) -> Vec<i64> {
    let mut rows: Vec<(i64, f64, f64)> = PATCHES
        .iter()
        .enumerate()
        .filter(|(_, p)| kind.is_none_or(|k| p.0 == k))
        .map(|(i, p)| (i as i64 + 1, p.1, p.2))
        .collect();
    let (desc, field) = match sort.strip_prefix('-') {
        Some(f) => (true, f),
        None => (false, sort),
    };
    rows.sort_by(|a, b| {
        let (x, y) = match field {
            "id" => return if desc { b.0.cmp(&a.0) } else { a.0.cmp(&b.0) },
            "area_mu" => (a.1, b.1),
            "confidence" => (a.2, b.2),
            _ => panic!("{sort}"),
        };
        let by_value = if desc {
            y.total_cmp(&x)
        } else {
            x.total_cmp(&y)
        };
        by_value.then(a.0.cmp(&b.0))
    });
    rows.into_iter().map(|r| r.0).collect()
}

#[tokio::test]
async fn every_sort_pages_exactly_with_a_filter() {
    let s = service().await;
    s.seed(patches()).await;
    // The fishponds (1, 3, 4, 6, 7, 8, 9, 10), written out.
    let expected: [(&str, [i64; 8]); 6] = [
        ("id", [1, 3, 4, 6, 7, 8, 9, 10]),
        ("-id", [10, 9, 8, 7, 6, 4, 3, 1]),
        ("area_mu", [9, 6, 7, 1, 3, 8, 4, 10]),
        ("-area_mu", [4, 10, 1, 3, 8, 7, 6, 9]),
        ("confidence", [10, 3, 8, 6, 9, 1, 4, 7]),
        ("-confidence", [1, 4, 7, 6, 9, 3, 8, 10]),
    ];
    for (sort, ids) in expected {
        assert_eq!(
            sorted_by_rule(sort, Some("fishpond")),
            ids.to_vec(),
            "{sort}"
        );
        for limit in [1, 2, 3, 8, 100] {
            let (got, _) = all_pages(&s, &format!("kind=fishpond&sort={sort}"), limit).await;
            assert_eq!(got, ids.to_vec(), "sort={sort} limit={limit}");
        }
        // Without the filter too (the construction patches tie with fishponds).
        let (got, _) = all_pages(&s, &format!("sort={sort}"), 3).await;
        assert_eq!(got, sorted_by_rule(sort, None), "sort={sort}, no filter");
        assert_eq!(got.len(), 10);
    }
    // No sort is sort=id, with the plain decimal cursor of before.
    let (got, cursors) = all_pages(&s, "kind=fishpond", 3).await;
    assert_eq!(got, vec![1, 3, 4, 6, 7, 8, 9, 10]);
    assert_eq!(cursors, vec!["4", "8"]);
}

#[tokio::test]
async fn cursors_name_their_sort_and_carry_the_exact_value() {
    let s = service().await;
    s.seed(patches()).await;
    let cases: [(&str, u32, &[&str]); 6] = [
        ("id", 3, &["4", "8"]),
        ("-id", 3, &["-id.8", "-id.4"]),
        // Pages [9, 6] [7, 1] [3, 8] [4, 10]: the first cursor is 0.1 + 0.2, bit for bit.
        (
            "area_mu",
            2,
            &[
                "area_mu.3fd3333333333334.6",
                "area_mu.4014000000000000.1",
                "area_mu.4014000000000000.8",
            ],
        ),
        // Pages [4, 10, 1] [3, 8, 7] [6, 9]: the first ends inside the 5-mu tie.
        (
            "-area_mu",
            3,
            &["-area_mu.4014000000000000.1", "-area_mu.400a000000000000.7"],
        ),
        (
            "confidence",
            3,
            &[
                "confidence.3fe6666666666666.8",
                "confidence.3feccccccccccccd.1",
            ],
        ),
        (
            "-confidence",
            3,
            &[
                "-confidence.3feccccccccccccd.7",
                "-confidence.3fe6666666666666.3",
            ],
        ),
    ];
    for (sort, limit, want) in cases {
        let (_, cursors) = all_pages(&s, &format!("kind=fishpond&sort={sort}"), limit).await;
        assert_eq!(cursors, want.to_vec(), "{sort}");
    }
    assert_eq!(JUST_ABOVE_0_3.to_bits(), 0x3fd3333333333334);
    assert_eq!(0.3_f64.to_bits(), 0x3fd3333333333333);

    // A page after a cursor: the rest in order; total counts the whole selection.
    let admin = Some(s.tokens.admin.as_str());
    let (status, page) = s
        .send(
            "GET",
            "/api/v1/changes?kind=fishpond&sort=-area_mu&limit=3&cursor=-area_mu.4014000000000000.1",
            admin,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let rows: Vec<(i64, f64)> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["id"].as_i64().unwrap(), p["area_mu"].as_f64().unwrap()))
        .collect();
    assert_eq!(rows, vec![(3, 5.0), (8, 5.0), (7, 3.25)]);
    assert_eq!(page["total"], 8);
    assert_eq!(page["next_cursor"], "-area_mu.400a000000000000.7");
}

#[tokio::test]
async fn bad_sorts_and_cursors_that_do_not_fit_are_400() {
    let s = service().await;
    s.seed(patches()).await;
    let admin = Some(s.tokens.admin.as_str());
    for sort in ["mu", "AREA_MU", "-", "", "%2Bid", "area_mu,id", "--id"] {
        let (status, e) = s
            .send("GET", &format!("/api/v1/changes?sort={sort}"), admin, None)
            .await;
        assert_eq!(
            (status, e["code"].as_str()),
            (StatusCode::BAD_REQUEST, Some("bad_request")),
            "sort={sort}: {e}"
        );
        let m = e["message"].as_str().unwrap();
        assert!(
            m.ends_with("one of id, -id, area_mu, -area_mu, confidence, -confidence"),
            "{m}"
        );
    }
    // An export checks the sort too.
    let (status, e) = s
        .send("GET", "/api/v1/changes?format=csv&sort=size", admin, None)
        .await;
    assert_eq!(
        (status, e["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("bad_request"))
    );

    for (sort, cursor) in [
        // Another sort's cursor.
        ("-area_mu", "4"),
        ("area_mu", "-area_mu.4014000000000000.1"),
        ("confidence", "area_mu.4014000000000000.1"),
        ("-confidence", "confidence.3fe6666666666666.8"),
        ("id", "-id.8"),
        ("-id", "8"),
        ("id", "area_mu.4014000000000000.1"),
        ("-id", "-area_mu.4014000000000000.1"),
        // Ones that do not parse.
        ("id", "abc"),
        ("id", "-3"),
        ("-id", "-id."),
        ("-id", "-id.-3"),
        ("area_mu", "area_mu.4014000000000000"),
        ("area_mu", "area_mu.4014.1"),
        ("area_mu", "area_mu.40140000000000000.1"),
        ("area_mu", "area_mu.401400000000000g.1"),
        ("area_mu", "area_mu.4014000000000000.-1"),
        ("area_mu", "area_mu.4014000000000000.1.2"),
        ("area_mu", "area_mu.5.0.1"),
        // A NaN.
        ("area_mu", "area_mu.7ff8000000000000.1"),
    ] {
        let (status, e) = s
            .send(
                "GET",
                &format!("/api/v1/changes?sort={sort}&cursor={cursor}"),
                admin,
                None,
            )
            .await;
        assert_eq!(
            (status, e["code"].as_str()),
            (StatusCode::BAD_REQUEST, Some("bad_cursor")),
            "sort={sort} cursor={cursor}: {e}"
        );
        assert!(
            e["message"]
                .as_str()
                .unwrap()
                .ends_with(&format!("with the same sort ({sort})")),
            "{e}"
        );
    }
}

#[tokio::test]
async fn the_store_refuses_a_value_sort_with_an_id_only_cursor() {
    let s = service().await;
    s.seed(patches()).await;
    let f = |sort, after| ChangeFilter {
        kind: Some("fishpond".into()),
        limit: 3,
        sort,
        after,
        ..ChangeFilter::default()
    };
    let err = s
        .store
        .list_changes(
            &Scope::All,
            &f(ChangeSort::AreaMu, Some(ChangeCursor { key: None, id: 1 })),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, ServiceError::Invalid(_)), "{err}");
    // The id sorts ignore a key; -id pages down.
    let page = s
        .store
        .list_changes(
            &Scope::All,
            &f(
                ChangeSort::IdDesc,
                Some(ChangeCursor {
                    key: Some(1.0),
                    id: 8,
                }),
            ),
        )
        .await
        .unwrap();
    let ids: Vec<i64> = page.items.iter().map(|p| p.id).collect();
    assert_eq!(ids, vec![7, 6, 4]);
    assert_eq!(page.next_after, Some(ChangeCursor { key: None, id: 4 }));
    assert_eq!(page.total, 8);
}

#[test]
fn cursors_round_trip_exactly() {
    for sort in ChangeSort::ALL {
        for key in [
            0.0,
            -0.0,
            JUST_ABOVE_0_3,
            f64::MIN_POSITIVE / 3.0,
            -1e300,
            f64::INFINITY,
            f64::NEG_INFINITY,
        ] {
            let c = ChangeCursor {
                key: sort.by_value().then_some(key),
                id: 42,
            };
            let text = c.encode(sort);
            let back = ChangeCursor::parse(&text, sort).unwrap();
            assert_eq!(back.id, 42, "{text}");
            assert_eq!(
                back.key.map(f64::to_bits),
                c.key.map(f64::to_bits),
                "{text}"
            );
            for other in ChangeSort::ALL.into_iter().filter(|o| *o != sort) {
                assert_eq!(
                    ChangeCursor::parse(&text, other),
                    None,
                    "{text} as {other:?}"
                );
            }
        }
    }
}

#[tokio::test]
async fn exports_page_through_ties_in_the_order_asked_for() {
    let s = service().await;
    // 2,101 patches over 7 areas and 3 confidences: every export page boundary (1,000) falls
    // inside a tie.
    let many: Vec<NewPatch> = (0..2101)
        .map(|i| {
            let mut p = patch(
                &format!("p{i}"),
                if i % 2 == 0 {
                    "fishpond"
                } else {
                    "construction"
                },
                "640502101001",
                105.0 + i as f64 * 0.002,
                37.5,
                (i % 7) as f64 * 0.5,
            );
            p.confidence = [0.6, 0.75, 0.9][i % 3];
            p
        })
        .collect();
    s.seed(many).await;
    let admin = Some(s.tokens.admin.as_str());
    for (sort, kind) in [
        ("-area_mu", None),
        ("area_mu", Some("fishpond")),
        ("-confidence", Some("construction")),
        ("-id", None),
    ] {
        let uri = match kind {
            Some(k) => format!("/api/v1/changes?format=geojson&sort={sort}&kind={k}"),
            None => format!("/api/v1/changes?format=geojson&sort={sort}"),
        };
        let (status, fc) = s.send("GET", &uri, admin, None).await;
        assert_eq!(status, StatusCode::OK, "{uri}");
        let got: Vec<(i64, f64, f64)> = fc["features"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| {
                let p = &f["properties"];
                (
                    f["id"].as_i64().unwrap(),
                    p["area_mu"].as_f64().unwrap(),
                    p["confidence"].as_f64().unwrap(),
                )
            })
            .collect();
        // What the rule gives, from the patches as seeded (patch i has id i + 1).
        let mut want: Vec<(i64, f64, f64)> = (0..2101_usize)
            .filter(|i| match kind {
                Some("fishpond") => i % 2 == 0,
                Some(_) => i % 2 == 1,
                None => true,
            })
            .map(|i| (i as i64 + 1, (i % 7) as f64 * 0.5, [0.6, 0.75, 0.9][i % 3]))
            .collect();
        want.sort_by(|a, b| match sort {
            "-area_mu" => b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)),
            "area_mu" => a.1.total_cmp(&b.1).then(a.0.cmp(&b.0)),
            "-confidence" => b.2.total_cmp(&a.2).then(a.0.cmp(&b.0)),
            _ => b.0.cmp(&a.0),
        });
        assert_eq!(got.len(), if kind.is_some() { want.len() } else { 2101 });
        assert_eq!(got, want, "{uri}");
    }
}
