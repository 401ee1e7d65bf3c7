//! The pages as a browser without JavaScript gets them: parsed HTML, read through
//! CSS selectors. What each state shows, the forms and their messages, what a
//! viewer and an anonymous visitor see, fragments for htmx, assets, live events.

#[macro_use]
mod common;

use std::time::Duration;

use chrono::{Duration as Days, Utc};
use common::app::{ADMIN, App, Auth};
use common::targets::Target;
use common::{TestDb, eventually};
use reqwest::StatusCode;
use reqwest::header;
use scraper::{ElementRef, Html, Selector};
use sitepulse::auth::model::Role;
use sitepulse::domain::{Check, CheckDefaults, CheckError, ErrorKind, NewWebsite, WebsiteId};

both_databases!(list_shows_each_state_with_totals_strip_and_filters);

const VIEWER: &str = "viewer";
const VIEWER_PASSWORD: &str = "viewer-password-123";

fn parse(page: &str) -> Html {
    Html::parse_document(page)
}

fn all<'a>(doc: &'a Html, selector: &str) -> Vec<ElementRef<'a>> {
    let selector = Selector::parse(selector).unwrap_or_else(|e| panic!("{selector}: {e:?}"));
    doc.select(&selector).collect()
}

fn one<'a>(doc: &'a Html, selector: &str) -> ElementRef<'a> {
    let found = all(doc, selector);
    assert_eq!(found.len(), 1, "exactly one {selector} in {}", doc.html());
    found[0]
}

fn text(element: ElementRef<'_>) -> String {
    element
        .text()
        .collect::<String>()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

fn inner<'a>(element: ElementRef<'a>, selector: &str) -> Vec<ElementRef<'a>> {
    let selector = Selector::parse(selector).unwrap();
    element.select(&selector).collect()
}

async fn page(app: &App, path: &str, auth: &Auth) -> (StatusCode, Html) {
    let response = app.get(path, auth).await;
    let status = response.status();
    (status, parse(&response.text().await.unwrap()))
}

/// Adds a website through the form; its id from the redirect to its page.
async fn add(app: &App, auth: &Auth, fields: &[(&str, &str)]) -> WebsiteId {
    let response = app.post_form("/websites/new", fields, auth).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let location = response.headers()[header::LOCATION].to_str().unwrap();
    location
        .strip_prefix("/websites/")
        .and_then(|id| id.parse().ok())
        .unwrap_or_else(|| panic!("redirect to the new website, not {location}"))
}

async fn viewer(app: &App) -> Auth {
    app.server
        .state()
        .accounts
        .create_user(VIEWER, VIEWER_PASSWORD, Role::Viewer)
        .await
        .unwrap();
    Auth::Cookie(app.login(VIEWER, VIEWER_PASSWORD).await.unwrap())
}

/// The row of a website on the list, when the list shows it.
fn row(doc: &Html, id: WebsiteId) -> Option<ElementRef<'_>> {
    all(doc, &format!("tr#w-{id}")).into_iter().next()
}

async fn list_shows_each_state_with_totals_strip_and_filters(db: TestDb) {
    let target = Target::start().await;
    let app = App::start(db, |c| c.check_interval = Duration::from_secs(1)).await;
    let admin = app.admin().await;
    let up = add(
        &app,
        &admin,
        &[("name", "Shop"), ("url", &target.url("/ok"))],
    )
    .await;
    let down = add(
        &app,
        &admin,
        &[("name", "Blog"), ("url", &target.url("/status/500"))],
    )
    .await;
    // Its first check hangs until it times out, long after this test.
    let pending = add(
        &app,
        &admin,
        &[
            ("name", "Archive"),
            ("url", &target.url("/slow/60000")),
            ("interval", "2m"),
            ("timeout", "90s"),
        ],
    )
    .await;

    let doc = eventually(20, "one website up and one down", || async {
        let (_, doc) = page(&app, "/", &admin).await;
        let up_row = row(&doc, up)?;
        let down_row = row(&doc, down)?;
        (up_row.value().attr("data-status") == Some("up")
            && down_row.value().attr("data-status") == Some("down"))
        .then_some(doc)
    })
    .await;
    let totals = text(one(&doc, "#totals"));
    assert_eq!(totals, "3 websites ▲ 1 up ▼ 1 down ● 1 pending");

    let up_row = row(&doc, up).unwrap();
    assert_eq!(text(inner(up_row, ".badge")[0]), "▲ UP");
    assert_eq!(text(inner(up_row, "td.name a")[0]), "Shop");
    assert_eq!(text(inner(up_row, ".url")[0]), target.url("/ok"));
    assert!(text(inner(up_row, "td.num")[0]).ends_with(" ms"));
    assert_eq!(text(inner(up_row, "td.num")[1]), "100 %");
    let bars = inner(up_row, ".strip i:not(.d)");
    assert!(!bars.is_empty());
    let title = bars[0].value().attr("title").unwrap();
    assert!(
        title.contains(" 200, ") && title.ends_with(" ms"),
        "{title}"
    );

    let down_row = row(&doc, down).unwrap();
    assert_eq!(text(inner(down_row, ".badge")[0]), "▼ DOWN");
    assert_eq!(text(inner(down_row, "td.num")[1]), "0.00 %");
    let bar = inner(down_row, ".strip i.d")[0];
    assert!(
        bar.value().attr("title").unwrap().contains("down 500, "),
        "{}",
        bar.html()
    );
    let strip = inner(down_row, ".strip")[0];
    assert!(strip.value().attr("aria-label").unwrap().contains("down"));

    let pending_row = row(&doc, pending).unwrap();
    assert_eq!(text(inner(pending_row, ".badge")[0]), "● PENDING");
    assert!(inner(pending_row, ".strip i").is_empty());

    // Filters: by status, by part of the name in any case, both together.
    let (_, doc) = page(&app, "/?status=down", &admin).await;
    assert!(row(&doc, down).is_some() && row(&doc, up).is_none() && row(&doc, pending).is_none());
    let (_, doc) = page(&app, "/?q=sHo", &admin).await;
    assert!(row(&doc, up).is_some() && row(&doc, down).is_none());
    assert_eq!(
        one(&doc, "#q").value().attr("value"),
        Some("sHo"),
        "the filter keeps what was typed"
    );
    let (_, doc) = page(&app, "/?q=shop&status=down", &admin).await;
    assert!(all(&doc, "tr.site").is_empty());
    assert!(text(one(&doc, "p.empty")).contains("No website matches"));

    // htmx gets the list alone, for the filter and for live reloads.
    let response = app
        .request(reqwest::Method::GET, "/?status=up", &admin)
        .header("HX-Request", "true")
        .send()
        .await
        .unwrap();
    assert!(
        response.headers()[header::VARY]
            .to_str()
            .unwrap()
            .contains("HX-Request")
    );
    let fragment = response.text().await.unwrap();
    assert!(fragment.starts_with("<section id=\"board\""), "{fragment}");
    assert!(!fragment.contains("<html"));
    assert!(fragment.contains("hx-get=\"/?status=up\""));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_list_says_how_to_add_the_first_website() {
    let app = App::start(TestDb::sqlite(), |_| {}).await;
    let admin = app.admin().await;
    let (status, doc) = page(&app, "/", &admin).await;
    assert_eq!(status, StatusCode::OK);
    let empty = one(&doc, ".empty-state");
    assert_eq!(
        inner(empty, "a")[0].value().attr("href"),
        Some("/websites/new")
    );
    assert!(text(one(&doc, "#totals")).starts_with("0 websites"));

    let viewer = viewer(&app).await;
    let (_, doc) = page(&app, "/", &viewer).await;
    assert!(text(one(&doc, ".empty-state")).contains("An administrator can add them"));
    assert!(all(&doc, "a[href='/websites/new']").is_empty());
    assert!(all(&doc, "a[href='/users']").is_empty());
    assert_eq!(text(one(&doc, "header .who a")), VIEWER);
    assert_eq!(text(one(&doc, "header .who button")), "Sign out");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_public_read_visitors_are_sent_to_sign_in() {
    let app = App::start(TestDb::sqlite(), |c| c.public_read = false).await;
    for path in ["/", "/websites/1", "/websites/new", "/users", "/live"] {
        let response = app.get(path, &Auth::None).await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER, "{path}");
        let location = response.headers()[header::LOCATION].to_str().unwrap();
        assert!(
            location.starts_with("/login?next=%2F"),
            "{path}: {location}"
        );
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_public_read_visitors_see_pages_but_no_controls() {
    let target = Target::start().await;
    let app = App::start(TestDb::sqlite(), |c| c.public_read = true).await;
    let admin = app.admin().await;
    let id = add(
        &app,
        &admin,
        &[("name", "Shop"), ("url", &target.url("/ok"))],
    )
    .await;

    let (status, doc) = page(&app, "/", &Auth::None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(row(&doc, id).is_some());
    assert!(all(&doc, "a[href='/websites/new']").is_empty());
    assert_eq!(text(one(&doc, "header .who")), "Sign in");

    let (status, doc) = page(&app, &format!("/websites/{id}"), &Auth::None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(text(one(&doc, "h1")), "Shop");
    assert!(all(&doc, ".actions").is_empty());
    assert!(all(&doc, "form[action$='/delete']").is_empty());

    let (_, doc) = page(&app, &format!("/websites/{id}"), &admin).await;
    let actions = text(one(&doc, ".actions"));
    for control in ["Edit", "Pause checks", "Check now", "Delete"] {
        assert!(actions.contains(control), "{control} in {actions}");
    }

    // Changing anything still needs a signed-in admin.
    let response = app
        .post_form(
            "/websites/new",
            &[("name", "X"), ("url", "http://x.test/")],
            &Auth::None,
        )
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert!(
        response.headers()[header::LOCATION]
            .to_str()
            .unwrap()
            .starts_with("/login")
    );
    let viewer = viewer(&app).await;
    let (status, doc) = page(&app, "/websites/new", &viewer).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(text(one(&doc, "h1")), "Not allowed");
    let response = app
        .post_form(&format!("/websites/{id}/delete"), &[], &viewer)
        .await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert!(
        app.server
            .state()
            .store
            .website(id)
            .await
            .unwrap()
            .is_some()
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_add_form_explains_each_mistake_and_keeps_what_was_typed() {
    let app = App::start(TestDb::sqlite(), |_| {}).await;
    let admin = app.admin().await;
    let (status, doc) = page(&app, "/websites/new", &admin).await;
    assert_eq!(status, StatusCode::OK);
    for (field, label) in [
        ("name", "Name"),
        ("url", "URL"),
        ("interval", "Check every"),
        ("timeout", "Time out after"),
    ] {
        let input = one(&doc, &format!("input[name={field}]"));
        let id = input.value().attr("id").unwrap();
        assert_eq!(text(one(&doc, &format!("label[for={id}]"))), label);
    }
    assert!(one(&doc, "details").value().attr("open").is_none());

    let response = app
        .post_form(
            "/websites/new",
            &[
                ("name", "  "),
                ("url", "ftp://files.example/"),
                ("interval", "5 parsecs"),
                ("timeout", ""),
            ],
            &admin,
        )
        .await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let doc = parse(&response.text().await.unwrap());
    assert!(text(one(&doc, "#f-name-error")).contains("must not be empty"));
    assert!(text(one(&doc, "#f-url-error")).contains("http or https"));
    assert!(text(one(&doc, "#f-interval-error")).contains("is not a duration"));
    assert!(all(&doc, "#f-timeout-error").is_empty());
    let url = one(&doc, "input[name=url]");
    assert_eq!(url.value().attr("value"), Some("ftp://files.example/"));
    assert_eq!(url.value().attr("aria-invalid"), Some("true"));
    assert_eq!(url.value().attr("aria-describedby"), Some("f-url-error"));
    assert_eq!(
        one(&doc, "input[name=interval]").value().attr("value"),
        Some("5 parsecs")
    );
    assert!(
        one(&doc, "details").value().attr("open").is_some(),
        "more options open to show the mistake there"
    );

    // A timeout longer than the interval is a mistake of the timeout field.
    let response = app
        .post_form(
            "/websites/new",
            &[
                ("name", "Shop"),
                ("url", "https://shop.example/"),
                ("interval", "30s"),
                ("timeout", "1m"),
            ],
            &admin,
        )
        .await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let doc = parse(&response.text().await.unwrap());
    assert!(text(one(&doc, "#f-timeout-error")).contains("shorter than the interval"));
    assert_eq!(
        one(&doc, "input[name=name]").value().attr("value"),
        Some("Shop")
    );

    let id = add(
        &app,
        &admin,
        &[("name", "Shop"), ("url", "https://shop.example/")],
    )
    .await;
    let (_, doc) = page(&app, &format!("/websites/{id}"), &admin).await;
    assert_eq!(text(one(&doc, "h1")), "Shop");
    assert_eq!(
        one(&doc, "p.url a").value().attr("href"),
        Some("https://shop.example/")
    );
    assert!(text(one(&doc, "p.since")).contains("Not checked yet"));
    app.stop().await;
}

fn check(website: WebsiteId, ago: Days, up: bool, ms: u32) -> Check {
    let at = Utc::now() - ago;
    Check {
        website_id: website,
        slot: at,
        checked_at: at,
        up,
        status_code: up.then_some(200),
        response_time_ms: ms,
        error: (!up).then(|| CheckError {
            kind: ErrorKind::Timeout,
            message: "no answer within 10s".into(),
        }),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_website_page_shows_uptime_chart_coloured_history_and_checks() {
    let zone: chrono_tz::Tz = "Asia/Kathmandu".parse().unwrap();
    let app = App::start(TestDb::sqlite(), |c| c.timezone = zone).await;
    let admin = app.admin().await;
    let state = app.server.state();
    // Stored paused, so only the checks written here exist.
    let mut spec = NewWebsite {
        name: "Shop",
        url: "https://shop.example/",
        ..NewWebsite::default()
    }
    .parse(CheckDefaults::default())
    .unwrap();
    spec.paused = true;
    let id = state.store.create_website(&spec).await.unwrap().id;
    let mut checks = Vec::new();
    // Today: all up. Two days ago: 199 of 200 up (99.5 %). Four days ago: half up.
    for i in 0..10 {
        checks.push(check(id, Days::minutes(i + 1), true, 100 + 2 * i as u32));
    }
    for i in 0..200 {
        checks.push(check(id, Days::days(2) + Days::seconds(i), i != 0, 80));
    }
    for i in 0..10 {
        checks.push(check(id, Days::days(4) + Days::seconds(i), i % 2 == 0, 80));
    }
    state.store.record_checks(&checks).await.unwrap();

    let (status, doc) = page(&app, &format!("/websites/{id}"), &admin).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(text(one(&doc, "h1")), "Shop");
    assert!(text(one(&doc, ".heading .badge")).contains("UP"));
    assert_eq!(text(one(&doc, ".heading .paused")), "paused");
    assert!(text(one(&doc, ".actions")).contains("Resume checks"));

    let days = all(&doc, "table.history tbody tr");
    assert_eq!(days.len(), 3, "days without checks are absent");
    let today = Utc::now().with_timezone(&zone).date_naive();
    let expect = [
        (0, "green", "✓ 100 %", "10"),
        (2, "yellow", "! 99.50 %", "200"),
        (4, "red", "✗ 50.00 %", "10"),
    ];
    for (row, (ago, colour, availability, count)) in days.iter().zip(expect) {
        let class = row.value().attr("class").unwrap();
        assert_eq!(class, format!("day {colour}"));
        let cells: Vec<String> = inner(*row, "td").into_iter().map(text).collect();
        let date = today - Days::days(ago);
        assert!(cells[0].ends_with(&date.to_string()), "{cells:?}");
        assert_eq!(cells[1], availability);
        assert_eq!(cells[3], count);
    }
    assert_eq!(
        text(inner(days[0], "td")[2]),
        "109 ms",
        "the mean of 100, 102, …, 118"
    );

    let uptime: Vec<String> = all(&doc, "dl.uptime dd").into_iter().map(text).collect();
    assert_eq!(uptime[0], "100 %");
    assert_eq!(
        uptime[1],
        format!("{}", "97.27 %"),
        "214 of 220 over 7 days"
    );

    let svg = one(&doc, "figure.chart svg");
    assert!(
        svg.value()
            .attr("aria-label")
            .unwrap()
            .contains("average 109 ms")
    );
    assert!(!inner(svg, "path.line").is_empty());

    let newest = all(&doc, "table.checks tbody tr");
    assert_eq!(newest.len(), 20, "the newest twenty");
    let first: Vec<String> = inner(newest[0], "td").into_iter().map(text).collect();
    let shown = (checks[0].checked_at.with_timezone(&zone))
        .format("%Y-%m-%d %H:%M:%S")
        .to_string();
    assert_eq!(first[0], shown, "times in the configured zone");
    assert_eq!(first[2], "HTTP 200");
    assert!(text(one(&doc, "p.tz")).contains("Asia/Kathmandu"));

    // A failed check names its error.
    let failing = vec![check(id, Days::seconds(1), false, 10_000)];
    state.store.record_checks(&failing).await.unwrap();
    let (_, doc) = page(&app, &format!("/websites/{id}"), &admin).await;
    let first = all(&doc, "table.checks tbody tr")[0];
    assert!(text(first).contains("DOWN"));
    assert!(text(first).contains("timeout: no answer within 10s"));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edit_pause_check_now_and_delete_work_as_plain_forms() {
    let target = Target::start().await;
    let app = App::start(TestDb::sqlite(), |_| {}).await;
    let admin = app.admin().await;
    let id = add(
        &app,
        &admin,
        &[
            ("name", "Shop"),
            ("url", &target.url("/ok")),
            ("interval", "1h"),
        ],
    )
    .await;
    let path = format!("/websites/{id}");

    let (_, doc) = page(&app, &format!("{path}/edit"), &admin).await;
    assert_eq!(
        one(&doc, "input[name=name]").value().attr("value"),
        Some("Shop")
    );
    assert_eq!(
        one(&doc, "input[name=interval]").value().attr("value"),
        Some("1h")
    );
    let response = app
        .post_form(
            &format!("{path}/edit"),
            &[
                ("name", "Shop EU"),
                ("url", &target.url("/ok")),
                ("interval", "30m"),
                ("timeout", "5s"),
            ],
            &admin,
        )
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(response.headers()[header::LOCATION], path.as_str());
    let response = app
        .post_form(
            &format!("{path}/edit"),
            &[("name", ""), ("url", &target.url("/ok"))],
            &admin,
        )
        .await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);

    app.post_form(&format!("{path}/pause"), &[], &admin).await;
    let (_, doc) = page(&app, &path, &admin).await;
    assert_eq!(text(one(&doc, "h1")), "Shop EU");
    assert!(text(one(&doc, "p.since")).contains("every 30m, timeout 5s"));
    assert_eq!(text(one(&doc, ".heading .paused")), "paused");

    app.post_form(&format!("{path}/resume"), &[], &admin).await;
    let response = app.post_form(&format!("{path}/check"), &[], &admin).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let (_, doc) = page(&app, &path, &admin).await;
    assert!(all(&doc, ".heading .paused").is_empty());
    assert!(text(one(&doc, ".heading .badge")).contains("UP"));
    assert!(text(all(&doc, "table.checks tbody tr")[0]).contains("HTTP 200"));

    let (_, doc) = page(&app, &format!("{path}/delete"), &admin).await;
    assert!(text(one(&doc, "h1")).contains("Delete Shop EU?"));
    let response = app.post_form(&format!("{path}/delete"), &[], &admin).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(response.headers()[header::LOCATION], "/");
    let (status, doc) = page(&app, &path, &admin).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(text(one(&doc, "h1")), "Not found");
    assert!(text(one(&doc, "p.error")).contains(&format!("no website with id {id}")));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admins_manage_users_on_the_users_page() {
    let app = App::start(TestDb::sqlite(), |_| {}).await;
    let admin = app.admin().await;
    let response = app
        .post_form(
            "/users",
            &[
                ("username", "carol"),
                ("password", "carols-password-1"),
                ("role", "viewer"),
            ],
            &admin,
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let doc = parse(&response.text().await.unwrap());
    assert_eq!(text(one(&doc, "p.notice")), "Added carol as viewer.");
    let rows: Vec<String> = all(&doc, "table.users tbody tr")
        .into_iter()
        .map(text)
        .collect();
    assert!(
        rows.iter().any(|r| r.starts_with("admin (you)")),
        "{rows:?}"
    );
    assert!(rows.iter().any(|r| r.starts_with("carol")), "{rows:?}");

    let response = app
        .post_form(
            "/users",
            &[("username", "Carol"), ("password", "x"), ("role", "admin")],
            &admin,
        )
        .await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let doc = parse(&response.text().await.unwrap());
    assert!(text(one(&doc, "p.error")).contains("at least 12 characters"));
    assert_eq!(
        one(&doc, "#new-username").value().attr("value"),
        Some("Carol")
    );
    let response = app
        .post_form(
            "/users",
            &[
                ("username", "CAROL"),
                ("password", "another-password-1"),
                ("role", "viewer"),
            ],
            &admin,
        )
        .await;
    assert_eq!(response.status(), StatusCode::CONFLICT);

    let accounts = &app.server.state().accounts;
    let carol = accounts.user_by_name("carol").await.unwrap().unwrap();
    let response = app
        .post_form(
            &format!("/users/{}/role", carol.id),
            &[("role", "admin")],
            &admin,
        )
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        accounts.user_by_name("carol").await.unwrap().unwrap().role,
        Role::Admin
    );
    let me = accounts.user_by_name(ADMIN).await.unwrap().unwrap();
    let response = app
        .post_form(&format!("/users/{}/delete", carol.id), &[], &admin)
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let response = app
        .post_form(&format!("/users/{}/delete", me.id), &[], &admin)
        .await;
    assert_eq!(response.status(), StatusCode::CONFLICT);
    let doc = parse(&response.text().await.unwrap());
    assert!(text(one(&doc, "p.error")).contains("last admin"));

    let viewer = viewer(&app).await;
    let (status, _) = page(&app, "/users", &viewer).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn assets_are_embedded_hashed_cached_and_pages_compressed() {
    let app = App::start(TestDb::sqlite(), |_| {}).await;
    let admin = app.admin().await;
    let response = app.get("/", &admin).await;
    let csp = response.headers()[header::CONTENT_SECURITY_POLICY]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"));
    let doc = parse(&response.text().await.unwrap());
    let scripts = all(&doc, "script");
    assert_eq!(scripts.len(), 3, "htmx, its SSE extension and app.js");
    assert!(
        scripts.iter().all(|s| s.value().attr("src").is_some()),
        "no inline scripts"
    );
    let mut assets: Vec<String> = scripts
        .iter()
        .map(|s| s.value().attr("src").unwrap().to_owned())
        .collect();
    assets.push(
        one(&doc, "link[rel=stylesheet]")
            .value()
            .attr("href")
            .unwrap()
            .into(),
    );
    assets.push(
        one(&doc, "link[rel=icon]")
            .value()
            .attr("href")
            .unwrap()
            .into(),
    );
    for asset in &assets {
        assert!(
            !asset.contains("//"),
            "served here, not from a CDN: {asset}"
        );
        let response = app.get(asset, &Auth::None).await;
        assert_eq!(response.status(), StatusCode::OK, "{asset}");
        assert_eq!(
            response.headers()[header::CACHE_CONTROL],
            "public, max-age=31536000, immutable"
        );
        assert!(!response.bytes().await.unwrap().is_empty());
    }
    assert!(assets.iter().any(|a| a.starts_with("/assets/htmx.")));
    // Unhashed or stale names are not served: a new version always has a new URL.
    let response = app.get("/assets/app.css", &Auth::None).await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);

    for encoding in ["gzip", "br"] {
        let response = app
            .request(reqwest::Method::GET, "/", &admin)
            .header(header::ACCEPT_ENCODING, encoding)
            .send()
            .await
            .unwrap();
        assert_eq!(response.headers()[header::CONTENT_ENCODING], encoding);
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_addresses_get_a_friendly_page() {
    let app = App::start(TestDb::sqlite(), |_| {}).await;
    let admin = app.admin().await;
    let response = app
        .request(reqwest::Method::GET, "/no/such/page", &admin)
        .header(header::ACCEPT, "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let doc = parse(&response.text().await.unwrap());
    assert_eq!(text(one(&doc, "h1")), "Page not found");
    assert_eq!(one(&doc, "main a").value().attr("href"), Some("/"));
    for path in ["/websites/abc", "/websites/-1", "/websites/99999"] {
        let (status, doc) = page(&app, path, &admin).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
        assert_eq!(text(one(&doc, "h1")), "Not found");
    }
    // Programs get plain text.
    let response = app.get("/no/such/page", &Auth::None).await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert_eq!(response.text().await.unwrap(), "not found\n");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_api_token_has_a_copy_button() {
    let app = App::start(TestDb::sqlite(), |_| {}).await;
    let admin = app.admin().await;
    let response = app
        .post_form("/account/tokens", &[("name", "deploy")], &admin)
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let doc = parse(&response.text().await.unwrap());
    let token = one(&doc, "code.token");
    let id = token.value().attr("id").unwrap();
    let button = one(&doc, "button[data-copy]");
    assert_eq!(button.value().attr("data-copy"), Some(id));
    assert!(text(token).starts_with("sp360_"));
    app.stop().await;
}

/// Reads Server-Sent Events from a streaming response.
struct Events {
    response: reqwest::Response,
    buffer: String,
}

impl Events {
    async fn open(app: &App, path: &str, auth: &Auth, last_event: Option<&str>) -> Self {
        let mut request = app.request(reqwest::Method::GET, path, auth);
        if let Some(id) = last_event {
            request = request.header("Last-Event-ID", id);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(
            response.headers()[header::CONTENT_TYPE],
            "text/event-stream"
        );
        assert!(response.headers().get(header::CONTENT_ENCODING).is_none());
        Self {
            response,
            buffer: String::new(),
        }
    }

    /// The next event as (name, id, data); comments (keep-alives) are skipped.
    async fn next(&mut self) -> (String, Option<String>, String) {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let (mut name, mut id, mut data) = (String::new(), None, String::new());
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("event:") {
                        name = v.trim().to_owned();
                    } else if let Some(v) = line.strip_prefix("id:") {
                        id = Some(v.trim().to_owned());
                    } else if let Some(v) = line.strip_prefix("data:") {
                        data.push_str(v.strip_prefix(' ').unwrap_or(v));
                    }
                }
                if !name.is_empty() || !data.is_empty() {
                    return (name, id, data);
                }
                continue;
            }
            let chunk = tokio::time::timeout(Duration::from_secs(20), self.response.chunk())
                .await
                .expect("an event within 20 s")
                .unwrap()
                .expect("the stream stays open");
            self.buffer.push_str(&String::from_utf8_lossy(&chunk));
        }
    }

    /// Skips events until one named `name`.
    async fn until(&mut self, name: &str) -> (Option<String>, String) {
        loop {
            let (event, id, data) = self.next().await;
            if event == name {
                return (id, data);
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_events_carry_new_rows_and_tell_stale_pages_to_reload() {
    let target = Target::start().await;
    let app = App::start(TestDb::sqlite(), |c| {
        c.check_interval = Duration::from_secs(1);
    })
    .await;
    let admin = app.admin().await;
    // A page rendered now knows the current version; it connects with it.
    let (_, doc) = page(&app, "/", &admin).await;
    let connect = one(&doc, "[sse-connect]")
        .value()
        .attr("sse-connect")
        .unwrap()
        .to_owned();
    assert_eq!(
        one(&doc, "[sse-connect] > section#board")
            .value()
            .attr("hx-trigger"),
        Some("sse:reload")
    );
    let mut list = Events::open(&app, &connect, &admin, None).await;

    let id = add(
        &app,
        &admin,
        &[("name", "Shop"), ("url", &target.url("/ok"))],
    )
    .await;
    // The new website changes the rows: the list reloads itself.
    list.until("reload").await;
    let (_, row) = list.until(&format!("row-{id}")).await;
    let row = Html::parse_fragment(&format!("<table>{row}</table>"));
    let tr = one(&row, "tr");
    assert_eq!(tr.value().attr("id"), Some(format!("w-{id}").as_str()));
    assert_eq!(
        tr.value().attr("sse-swap"),
        Some(format!("row-{id}").as_str())
    );
    assert_eq!(tr.value().attr("data-status"), Some("up"));
    let (version, totals) = list.until("totals").await;
    assert!(totals.contains("sse-swap=\"totals\""));
    assert!(text(one(&Html::parse_fragment(&totals), "p")).contains("1 up"));

    // The website's own page hears of its checks.
    let mut detail = Events::open(
        &app,
        &format!("/live?website={id}&v={}", version.as_deref().unwrap()),
        &admin,
        None,
    )
    .await;
    let (id_seen, _) = detail.until("check").await;
    assert!(id_seen.is_some());

    // Going down shows on the list too.
    target.stop();
    loop {
        let (_, data) = list.until(&format!("row-{id}")).await;
        if data.contains("data-status=\"down\"") {
            break;
        }
    }

    // A page that reconnects after missing updates is told to reload at once.
    let mut stale = Events::open(&app, "/live", &admin, Some("0")).await;
    assert_eq!(stale.next().await.0, "reload");
    let mut stale = Events::open(&app, &format!("/live?website={id}&v=0"), &admin, None).await;
    assert_eq!(stale.next().await.0, "check");
    app.stop().await;
}
