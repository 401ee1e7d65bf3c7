//! The pages in a real headless Chromium, driven over WebDriver (chromedriver):
//! signing in, adding a website, watching it go UP and DOWN on the list without a
//! reload, the live connection coming back after the service restarts, the
//! website's history, deleting it. Screenshots of the list and of the website's
//! page are saved under `target/test-artifacts/`.
//!
//! Needs Debian's `chromium` and `chromium-driver`; `SITEPULSE_TEST_CHROMEDRIVER`
//! and `SITEPULSE_TEST_CHROMIUM` name other binaries.

#[macro_use]
mod common;

use std::path::PathBuf;
use std::time::Duration;

use common::TestDb;
use common::app::{ADMIN, ADMIN_PASSWORD, App};
use common::targets::Target;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};
use sitepulse::domain::WebsitePatch;
use tokio::process::{Child, Command};

/// chromedriver on a free local port, stopped when dropped.
struct Driver {
    _process: Child,
    url: String,
}

impl Driver {
    async fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let binary =
            std::env::var("SITEPULSE_TEST_CHROMEDRIVER").unwrap_or_else(|_| "chromedriver".into());
        let process = Command::new(&binary)
            .arg(format!("--port={port}"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot run {binary} (apt-get install chromium-driver): {e}")
            });
        let url = format!("http://127.0.0.1:{port}");
        let status = format!("{url}/status");
        common::eventually(20, "chromedriver to answer", || {
            let status = status.clone();
            async move {
                let answer = reqwest::get(&status).await.ok()?;
                let body: Value = serde_json::from_str(&answer.text().await.ok()?).ok()?;
                (body["value"]["ready"] == json!(true)).then_some(())
            }
        })
        .await;
        Self {
            _process: process,
            url,
        }
    }

    async fn browser(&self, profile: &std::path::Path) -> Client {
        let chromium =
            std::env::var("SITEPULSE_TEST_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
        let mut args: Vec<String> = common::CHROMIUM_FLAGS
            .iter()
            .map(|f| f.to_string())
            .collect();
        args.push("--disable-dev-shm-usage".into());
        args.push("--window-size=1280,900".into());
        args.push(format!("--user-data-dir={}", profile.display()));
        let mut capabilities = serde_json::Map::new();
        capabilities.insert(
            "goog:chromeOptions".into(),
            json!({
                "binary": chromium,
                "args": args,
            }),
        );
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        ClientBuilder::new(connector)
            .capabilities(capabilities)
            .connect(&self.url)
            .await
            .expect("a Chromium session")
    }
}

fn artifacts() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/test-artifacts");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Runs `script` in the page until it returns something other than null or false.
async fn wait_for(browser: &Client, what: &str, script: &str) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let value = browser.execute(script, vec![]).await.unwrap();
        if !value.is_null() && value != json!(false) {
            return value;
        }
        if tokio::time::Instant::now() > deadline {
            let page = browser.source().await.unwrap_or_default();
            panic!("timed out waiting for {what}; the page:\n{page}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn click(browser: &Client, locator: Locator<'_>) {
    browser.find(locator).await.unwrap().click().await.unwrap();
}

async fn type_into(browser: &Client, css: &str, text: &str) {
    let field = browser.find(Locator::Css(css)).await.unwrap();
    field.send_keys(text).await.unwrap();
}

/// The status the list shows for a website, from its row.
fn row_status(id: i64) -> String {
    format!("const row = document.getElementById('w-{id}'); return row && row.dataset.status;")
}

/// Marks the page, so that a reload (which would lose the mark) shows.
async fn mark_page(browser: &Client) {
    let script = "window.notReloaded = true; return true;";
    browser.execute(script, vec![]).await.unwrap();
}

/// The page is still the one that was marked: what changed came without a reload.
async fn assert_not_reloaded(browser: &Client) {
    let marked = browser
        .execute("return window.notReloaded === true;", vec![])
        .await
        .unwrap();
    assert_eq!(marked, json!(true), "the page was reloaded");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_adds_a_website_and_watches_it_live() {
    let target = Target::start().await;
    target.set_healthy(false);
    let app = App::start(TestDb::sqlite(), |c| {
        c.check_interval = Duration::from_secs(1);
    })
    .await;
    let addr = app.server.addr();
    let driver = Driver::start().await;
    let profile = tempfile::tempdir().unwrap();
    let browser = driver.browser(profile.path()).await;

    // Sign in.
    browser.goto(&app.url("/")).await.unwrap();
    let url = browser.current_url().await.unwrap();
    assert_eq!(url.path(), "/", "public read shows the list first");
    click(&browser, Locator::LinkText("Sign in")).await;
    type_into(&browser, "input[name=username]", ADMIN).await;
    type_into(&browser, "input[name=password]", ADMIN_PASSWORD).await;
    click(&browser, Locator::Css("form button[type=submit]")).await;
    wait_for(
        &browser,
        "the signed-in header",
        "const who = document.querySelector('header .who'); return who && who.textContent.includes('Sign out');",
    )
    .await;

    // Add a website through the form, with a one-second interval.
    click(&browser, Locator::LinkText("Add website")).await;
    let form = browser
        .form(Locator::Css("form.website-form"))
        .await
        .unwrap();
    type_into(&browser, "#f-name", "Local shop").await;
    type_into(&browser, "#f-url", &target.url("/switch")).await;
    click(&browser, Locator::Css("details summary")).await;
    type_into(&browser, "#f-interval", "1s").await;
    form.submit().await.unwrap();
    let id: i64 = wait_for(
        &browser,
        "the new website's page",
        "const m = location.pathname.match(/^\\/websites\\/(\\d+)$/); return m && Number(m[1]);",
    )
    .await
    .as_i64()
    .unwrap();

    // The list: the website is down (503); it goes UP without a reload.
    click(&browser, Locator::LinkText("← All websites")).await;
    wait_for(&browser, "the row", &row_status(id)).await;
    mark_page(&browser).await;
    wait_for(
        &browser,
        "the live connection",
        "return document.body.dataset.live === 'on';",
    )
    .await;
    target.set_healthy(true);
    wait_for(
        &browser,
        "UP",
        &format!("{} === 'up'", row_status(id).trim_end_matches(';')),
    )
    .await;
    assert_not_reloaded(&browser).await;
    let badge = browser
        .find(Locator::Css(&format!("#w-{id} .badge")))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(badge.contains("UP"), "{badge}");
    wait_for(
        &browser,
        "several bars in the strip",
        &format!("return document.querySelectorAll('#w-{id} .strip i:not(.d)').length >= 2;"),
    )
    .await;
    std::fs::write(
        artifacts().join("list.png"),
        browser.screenshot().await.unwrap(),
    )
    .unwrap();

    // The server stops answering: DOWN, still without a reload.
    target.stop();
    wait_for(
        &browser,
        "DOWN",
        &format!("{} === 'down'", row_status(id).trim_end_matches(';')),
    )
    .await;
    assert_not_reloaded(&browser).await;

    // The service restarts; meanwhile the website is renamed. The page
    // reconnects by itself and catches up.
    let db = app.stop().await;
    wait_for(
        &browser,
        "the page to notice the lost connection",
        "return document.body.dataset.live === 'off';",
    )
    .await;
    let store = db.store().await;
    store
        .update_website(
            id,
            &WebsitePatch {
                name: Some("Local shop (renamed)"),
                ..WebsitePatch::default()
            }
            .apply(&store.website(id).await.unwrap().unwrap())
            .unwrap(),
        )
        .await
        .unwrap();
    drop(store);
    let app = App::start(db, |c| {
        c.check_interval = Duration::from_secs(1);
        c.listen = addr;
    })
    .await;
    wait_for(
        &browser,
        "the renamed website after reconnecting",
        &format!(
            "const a = document.querySelector('#w-{id} td.name a'); return a && a.textContent === 'Local shop (renamed)';"
        ),
    )
    .await;
    assert_not_reloaded(&browser).await;

    // The filter narrows the list as one types, without leaving the page.
    type_into(&browser, "#q", "no such website").await;
    wait_for(
        &browser,
        "the filtered list",
        "const p = document.querySelector('#board p.empty'); return p && p.textContent.includes('No website matches');",
    )
    .await;
    assert_not_reloaded(&browser).await;
    let address = browser.current_url().await.unwrap();
    assert!(
        address
            .query_pairs()
            .any(|(k, v)| k == "q" && v == "no such website"),
        "the filter is in the address, so it can be shared and reloaded: {address}"
    );
    browser.goto(&app.url("/?q=RENAMED")).await.unwrap();
    wait_for(&browser, "the row found by the filter", &row_status(id)).await;

    // On a phone-sized window the list still reads.
    browser.set_window_size(390, 844).await.unwrap();
    std::fs::write(
        artifacts().join("list-phone.png"),
        browser.screenshot().await.unwrap(),
    )
    .unwrap();
    browser.set_window_size(1280, 900).await.unwrap();

    // The website's page: today's row in the history, the chart, newest checks.
    click(&browser, Locator::Css(&format!("#w-{id} td.name a"))).await;
    let today = chrono::Utc::now().date_naive().to_string();
    wait_for(
        &browser,
        "today's history row",
        &format!(
            "const row = document.querySelector('table.history tbody tr'); return row && row.textContent.includes('{today}');"
        ),
    )
    .await;
    browser
        .find(Locator::Css("figure.chart svg"))
        .await
        .unwrap();
    let history_row = browser
        .find(Locator::Css("table.history tbody tr"))
        .await
        .unwrap();
    let class = history_row.attr("class").await.unwrap().unwrap();
    assert_eq!(class, "day red", "some checks were down today");
    // It updates itself as checks complete.
    let newest = "const t = document.querySelector('table.checks tbody tr time'); return t && t.getAttribute('datetime');";
    let first = wait_for(&browser, "the newest check", newest).await;
    mark_page(&browser).await;
    wait_for(
        &browser,
        "a newer check without a reload",
        &format!("{} !== {first}", newest.trim_end_matches(';')),
    )
    .await;
    assert_not_reloaded(&browser).await;
    std::fs::write(
        artifacts().join("detail.png"),
        browser.screenshot().await.unwrap(),
    )
    .unwrap();

    // Delete it, confirming on the way.
    click(&browser, Locator::Css(".actions a.danger")).await;
    click(&browser, Locator::Css("main form button.danger")).await;
    wait_for(
        &browser,
        "the empty list",
        "return location.pathname === '/' && document.querySelector('.empty-state') !== null;",
    )
    .await;
    assert!(
        app.server
            .state()
            .store
            .website(id)
            .await
            .unwrap()
            .is_none()
    );

    browser.close().await.unwrap();
    app.stop().await;
}
