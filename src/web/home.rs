//! `/`: every website with its current state, the totals, a filter, and a strip of
//! the newest checks. Rows come pre-rendered from the live [`Board`](super::live::Board).

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use chrono_tz::Tz;
use maud::{Markup, PreEscaped, html};
use serde::Deserialize;

use super::live::{Entry, Totals};
use super::{PageError, Reader, fmt, is_htmx, layout};
use crate::domain::Status;
use crate::http::AppState;

#[derive(Debug, Default, Deserialize)]
pub struct Filter {
    #[serde(default)]
    q: String,
    #[serde(default)]
    status: String,
}

impl Filter {
    fn status(&self) -> Option<Status> {
        match self.status.to_ascii_lowercase().as_str() {
            "up" => Some(Status::Up),
            "down" => Some(Status::Down),
            "pending" => Some(Status::Pending),
            _ => None,
        }
    }

    fn query_string(&self) -> String {
        let mut query = url::form_urlencoded::Serializer::new(String::new());
        if !self.q.trim().is_empty() {
            query.append_pair("q", self.q.trim());
        }
        if let Some(status) = self.status() {
            query.append_pair("status", &status.to_string().to_lowercase());
        }
        let query = query.finish();
        if query.is_empty() {
            "/".to_owned()
        } else {
            format!("/?{query}")
        }
    }
}

pub async fn page(
    State(state): State<AppState>,
    Reader(caller): Reader,
    filter: Result<Query<Filter>, QueryRejection>,
    headers: HeaderMap,
) -> Result<Response, PageError> {
    let Query(filter) = filter.unwrap_or_default();
    let snapshot = state.board.snapshot().await.map_err(PageError::internal)?;
    let wanted_status = filter.status();
    let needle = filter.q.trim().to_lowercase();
    let rows: Vec<_> = snapshot
        .rows
        .iter()
        .filter(|row| wanted_status.is_none_or(|s| row.status == s))
        .filter(|row| needle.is_empty() || row.search.contains(&needle))
        .collect();
    let board = html! {
        section #board hx-get=(filter.query_string()) hx-trigger="sse:reload" hx-swap="outerHTML" {
            (render_totals(&snapshot.totals))
            @if snapshot.totals.all() == 0 {
                div.empty-state {
                    p { "No websites are watched yet." }
                    @if caller.is_admin() {
                        p { a.button href="/websites/new" { "Add your first website" } }
                    } @else {
                        p { "An administrator can add them." }
                    }
                }
            } @else if rows.is_empty() {
                p.empty { "No website matches this filter. " a href="/" { "Show all" } }
            } @else {
                table.websites {
                    caption.visually-hidden { "Websites and their current state" }
                    thead {
                        tr {
                            th scope="col" { "Website" }
                            th scope="col" { "Status" }
                            th scope="col" .num { "Response" }
                            th scope="col" .num { "24 h" }
                            th scope="col" { "Recent checks" }
                        }
                    }
                    tbody {
                        @for row in &rows { (PreEscaped(row.html.as_ref())) }
                    }
                }
            }
        }
    };
    let mut response = if is_htmx(&headers) {
        board.into_response()
    } else {
        let body = html! {
            div.heading {
                h1 { "Websites" }
                @if caller.is_admin() {
                    a.button.primary href="/websites/new" { "Add website" }
                }
            }
            form.filter method="get" action="/" role="search"
                hx-get="/" hx-target="#board" hx-swap="outerHTML" hx-push-url="true"
                hx-trigger="input changed delay:250ms from:#q, change from:#status, submit" {
                label for="q" { "Name or URL" }
                input #q type="search" name="q" value=(filter.q) maxlength="200" autocomplete="off";
                label for="status" { "Status" }
                select #status name="status" {
                    option value="" selected[wanted_status.is_none()] { "Any" }
                    @for s in [Status::Up, Status::Down, Status::Pending] {
                        option value=(s.to_string().to_lowercase()) selected[wanted_status == Some(s)] { (s) }
                    }
                }
                button type="submit" { "Filter" }
            }
            div hx-ext="sse" sse-connect={ "/live?v=" (snapshot.version) } { (board) }
        };
        layout::page("Websites", caller.user(), body).into_response()
    };
    response
        .headers_mut()
        .insert(header::VARY, header::HeaderValue::from_static("HX-Request"));
    Ok(response)
}

/// The counts at the top of the list; replaced whole by live updates.
pub fn render_totals(totals: &Totals) -> Markup {
    html! {
        p #totals .totals sse-swap="totals" hx-swap="outerHTML" aria-live="polite" {
            span { strong { (totals.all()) } @if totals.all() == 1 { " website" } @else { " websites" } } " "
            span.status.up { (fmt::mark(Status::Up)) " " strong { (totals.up) } " up" } " "
            span.status.down { (fmt::mark(Status::Down)) " " strong { (totals.down) } " down" } " "
            span.status.pending { (fmt::mark(Status::Pending)) " " strong { (totals.pending) } " pending" }
        }
    }
}

/// One website's row; replaced whole by live updates.
pub fn render_row(entry: &Entry, timezone: Tz) -> Markup {
    let website = &entry.website;
    let status = website.status();
    let sse = format!("row-{}", website.id);
    html! {
        tr #{ "w-" (website.id) } .site sse-swap=(sse) hx-swap="outerHTML" data-status=(fmt::status_word(status)) {
            td.name {
                a href={ "/websites/" (website.id) } { (website.name) }
                span.url { (website.url) }
            }
            td { (fmt::badge(status)) @if website.paused { " " span.paused { "paused" } } }
            td.num {
                @match &website.last_check {
                    Some(check) if check.status_code.is_some() => (fmt::ms(check.response_time_ms)),
                    _ => "–",
                }
            }
            td.num { (fmt::percent(entry.day.uptime())) }
            td {
                span.strip role="img" aria-label=(strip_label(entry)) {
                    // Up bars carry no class: at 1,000 websites every byte counts 30,000 times.
                    @for check in entry.strip.iter().rev() {
                        i class=[(!check.up).then_some("d")] title=(fmt::check_summary(check, timezone)) {}
                    }
                }
            }
        }
    }
}

fn strip_label(entry: &Entry) -> String {
    let up = entry.strip.iter().filter(|c| c.up).count();
    format!(
        "last {} checks: {up} up, {} down",
        entry.strip.len(),
        entry.strip.len() - up
    )
}
