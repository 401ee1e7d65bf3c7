//! One website: adding (`/websites/new`), its page with status, uptime, response
//! time chart, 30-day history and newest checks (`/websites/{id}`), editing,
//! pausing, checking at once and deleting.

use std::time::Duration;

use axum::Form;
use axum::extract::rejection::FormRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use chrono::Utc;
use maud::{Markup, html};
use serde::Deserialize;

use super::{Admin, PageError, Reader, chart, fmt, is_htmx, layout};
use crate::domain::{Colour, NewWebsite, ValidationError, Website, WebsiteId, WebsitePatch};
use crate::http::AppState;
use crate::websites::WebsiteError;

/// How many of the newest checks the page lists.
const RECENT_CHECKS: u32 = 20;
/// Days of history in the table.
const HISTORY_DAYS: u32 = 30;

fn parse_id(raw: &str) -> Result<WebsiteId, PageError> {
    raw.parse::<WebsiteId>()
        .ok()
        .filter(|id| *id > 0)
        .ok_or_else(|| not_found(raw))
}

fn not_found(id: impl std::fmt::Display) -> PageError {
    PageError::Status(
        StatusCode::NOT_FOUND,
        format!("There is no website with id {id}. It may have been deleted."),
    )
}

fn website_error(err: WebsiteError) -> PageError {
    match err {
        WebsiteError::NotFound(id) => not_found(id),
        WebsiteError::Invalid(e) => PageError::Status(StatusCode::UNPROCESSABLE_ENTITY, e.message),
        WebsiteError::Store(e) => PageError::internal(e),
    }
}

fn form_error(err: FormRejection) -> PageError {
    PageError::Status(
        StatusCode::BAD_REQUEST,
        format!("The form could not be read: {}", err.body_text()),
    )
}

/// The fields of the add and edit forms, as typed.
#[derive(Debug, Default, Deserialize)]
pub struct WebsiteForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    url: String,
    #[serde(default)]
    interval: String,
    #[serde(default)]
    timeout: String,
}

/// Messages per field; several fields can be wrong at once.
#[derive(Default)]
struct FieldErrors(Vec<(&'static str, String)>);

impl FieldErrors {
    fn add(&mut self, err: ValidationError) {
        if !self.0.iter().any(|(field, _)| *field == err.field) {
            self.0.push((err.field, err.message));
        }
    }

    fn get(&self, field: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(f, _)| *f == field)
            .map(|(_, m)| m.as_str())
    }
}

impl WebsiteForm {
    fn from_website(website: &Website) -> Self {
        Self {
            name: website.name.clone(),
            url: website.url.clone(),
            interval: humantime::format_duration(website.interval).to_string(),
            timeout: humantime::format_duration(website.timeout).to_string(),
        }
    }

    /// Checks every field on its own, so all mistakes are shown at once; returns
    /// the durations when they could be read.
    fn check(&self, errors: &mut FieldErrors) -> (Option<Duration>, Option<Duration>) {
        if let Err(e) = crate::domain::WebsiteName::parse(&self.name) {
            errors.add(e);
        }
        if let Err(e) = crate::domain::WebsiteUrl::parse(&self.url) {
            errors.add(e);
        }
        let interval = duration_field("interval", &self.interval, errors);
        let timeout = duration_field("timeout", &self.timeout, errors);
        (interval, timeout)
    }
}

fn duration_field(field: &'static str, raw: &str, errors: &mut FieldErrors) -> Option<Duration> {
    crate::domain::written_duration(field, raw).unwrap_or_else(|e| {
        errors.add(e);
        None
    })
}

fn field(
    label: &str,
    name: &str,
    value: &str,
    errors: &FieldErrors,
    attrs: (&str, &str, bool),
) -> Markup {
    let (kind, hint, required) = attrs;
    let error = errors.get(name);
    let id = format!("f-{name}");
    let error_id = format!("{id}-error");
    html! {
        div.field {
            label for=(id) { (label) }
            input #(id) type=(kind) name=(name) value=(value) required[required]
                aria-invalid=[error.map(|_| "true")]
                aria-describedby=[error.map(|_| error_id.as_str())]
                placeholder=(hint);
            @if let Some(message) = error {
                p.error.field-error #(error_id) { (message) }
            }
        }
    }
}

fn website_form(action: &str, submit: &str, form: &WebsiteForm, errors: &FieldErrors) -> Markup {
    let more_open = errors.get("interval").is_some()
        || errors.get("timeout").is_some()
        || !form.interval.is_empty()
        || !form.timeout.is_empty();
    html! {
        @if !errors.0.is_empty() {
            p.error role="alert" { "Please correct the marked fields." }
        }
        form.card.website-form method="post" action=(action) novalidate {
            (field("Name", "name", &form.name, errors, ("text", "e.g. Shop", true)))
            (field("URL", "url", &form.url, errors, ("url", "https://example.com/", true)))
            details open[more_open] {
                summary { "More options" }
                (field("Check every", "interval", &form.interval, errors, ("text", "60s", false)))
                (field("Time out after", "timeout", &form.timeout, errors, ("text", "10s", false)))
            }
            button.primary type="submit" { (submit) }
        }
    }
}

/// `GET /websites/new`.
pub async fn new_page(Admin(caller): Admin) -> Result<Markup, PageError> {
    let body = html! {
        h1 { "Add a website" }
        (website_form("/websites/new", "Add website", &WebsiteForm::default(), &FieldErrors::default()))
    };
    Ok(layout::page("Add a website", caller.user(), body))
}

/// `POST /websites/new`: stores the website and goes to its page, or shows the
/// form again with what was typed and what is wrong.
pub async fn create(
    State(state): State<AppState>,
    Admin(caller): Admin,
    form: Result<Form<WebsiteForm>, FormRejection>,
) -> Result<Response, PageError> {
    let Form(form) = form.map_err(form_error)?;
    let mut errors = FieldErrors::default();
    let (interval, timeout) = form.check(&mut errors);
    if errors.0.is_empty() {
        let input = NewWebsite {
            name: &form.name,
            url: &form.url,
            interval,
            timeout,
        };
        match state.websites.create(&input).await {
            Ok(website) => {
                return Ok(Redirect::to(&format!("/websites/{}", website.id)).into_response());
            }
            Err(WebsiteError::Invalid(e)) => errors.add(e),
            Err(e) => return Err(website_error(e)),
        }
    }
    let body = html! {
        h1 { "Add a website" }
        (website_form("/websites/new", "Add website", &form, &errors))
    };
    Ok((
        StatusCode::UNPROCESSABLE_ENTITY,
        layout::page("Add a website", caller.user(), body),
    )
        .into_response())
}

/// `GET /websites/{id}/edit`.
pub async fn edit_page(
    State(state): State<AppState>,
    Admin(caller): Admin,
    Path(id): Path<String>,
) -> Result<Markup, PageError> {
    let id = parse_id(&id)?;
    let website = load(&state, id).await?;
    let body = html! {
        h1 { "Edit " (website.name) }
        (website_form(&format!("/websites/{id}/edit"), "Save", &WebsiteForm::from_website(&website), &FieldErrors::default()))
        p { a href={ "/websites/" (id) } { "Back without saving" } }
    };
    Ok(layout::page("Edit website", caller.user(), body))
}

/// `POST /websites/{id}/edit`.
pub async fn update(
    State(state): State<AppState>,
    Admin(caller): Admin,
    Path(id): Path<String>,
    form: Result<Form<WebsiteForm>, FormRejection>,
) -> Result<Response, PageError> {
    let id = parse_id(&id)?;
    let Form(form) = form.map_err(form_error)?;
    let mut errors = FieldErrors::default();
    let (interval, timeout) = form.check(&mut errors);
    if errors.0.is_empty() {
        let patch = WebsitePatch {
            name: Some(&form.name),
            url: Some(&form.url),
            interval,
            timeout,
            paused: None,
        };
        match state.websites.update(id, &patch).await {
            Ok(_) => return Ok(Redirect::to(&format!("/websites/{id}")).into_response()),
            Err(WebsiteError::Invalid(e)) => errors.add(e),
            Err(e) => return Err(website_error(e)),
        }
    }
    let body = html! {
        h1 { "Edit website" }
        (website_form(&format!("/websites/{id}/edit"), "Save", &form, &errors))
    };
    Ok((
        StatusCode::UNPROCESSABLE_ENTITY,
        layout::page("Edit website", caller.user(), body),
    )
        .into_response())
}

async fn set_paused(state: &AppState, id: &str, paused: bool) -> Result<Response, PageError> {
    let id = parse_id(id)?;
    let patch = WebsitePatch {
        paused: Some(paused),
        ..WebsitePatch::default()
    };
    state
        .websites
        .update(id, &patch)
        .await
        .map_err(website_error)?;
    Ok(Redirect::to(&format!("/websites/{id}")).into_response())
}

/// `POST /websites/{id}/pause`.
pub async fn pause(
    State(state): State<AppState>,
    _admin: Admin,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    set_paused(&state, &id, true).await
}

/// `POST /websites/{id}/resume`.
pub async fn resume(
    State(state): State<AppState>,
    _admin: Admin,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    set_paused(&state, &id, false).await
}

/// `POST /websites/{id}/check`: checks at once; the result shows on the page.
pub async fn check_now(
    State(state): State<AppState>,
    _admin: Admin,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    let id = parse_id(&id)?;
    state
        .websites
        .check_now(id, &state.probe)
        .await
        .map_err(website_error)?;
    Ok(Redirect::to(&format!("/websites/{id}")).into_response())
}

/// `GET /websites/{id}/delete`: asks first.
pub async fn confirm_delete(
    State(state): State<AppState>,
    Admin(caller): Admin,
    Path(id): Path<String>,
) -> Result<Markup, PageError> {
    let id = parse_id(&id)?;
    let website = load(&state, id).await?;
    let body = html! {
        h1 { "Delete " (website.name) "?" }
        p { "This deletes " strong { (website.name) } " (" (website.url) ") with its whole history. It cannot be undone." }
        form.inline method="post" action={ "/websites/" (id) "/delete" } {
            button.danger type="submit" { "Delete website and history" }
        }
        " "
        a href={ "/websites/" (id) } { "Keep it" }
    };
    Ok(layout::page("Delete website", caller.user(), body))
}

/// `POST /websites/{id}/delete`.
pub async fn delete(
    State(state): State<AppState>,
    _admin: Admin,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    let id = parse_id(&id)?;
    state.websites.delete(id).await.map_err(website_error)?;
    Ok(Redirect::to("/").into_response())
}

async fn load(state: &AppState, id: WebsiteId) -> Result<Website, PageError> {
    state
        .store
        .website(id)
        .await
        .map_err(PageError::internal)?
        .ok_or_else(|| not_found(id))
}

/// `GET /websites/{id}`: the page, or with `HX-Request` only its live section.
pub async fn page(
    State(state): State<AppState>,
    Reader(caller): Reader,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, PageError> {
    let id = parse_id(&id)?;
    let version = state.board.version();
    let (website, uptime, history, recent, series) = tokio::try_join!(
        load(&state, id),
        async { state.websites.uptime(id).await.map_err(website_error) },
        async {
            state
                .websites
                .history(id, HISTORY_DAYS)
                .await
                .map_err(website_error)
        },
        async {
            state
                .store
                .recent_checks(id, None, RECENT_CHECKS)
                .await
                .map_err(PageError::internal)
        },
        async {
            let since = Utc::now() - chrono::Duration::hours(24);
            state
                .store
                .check_series(id, since, chart::BUCKET)
                .await
                .map(|points| (since, points))
                .map_err(PageError::internal)
        },
    )?;
    let tz = state.board.timezone();
    let status = website.status();
    let admin = caller.is_admin();
    let live = html! {
        section #live hx-get={ "/websites/" (id) } hx-trigger="sse:check" hx-swap="outerHTML" {
            div.heading {
                h1 { (website.name) }
                (fmt::badge(status))
                @if website.paused { span.paused { "paused" } }
            }
            p.url { a href=(website.url) rel="noopener noreferrer" { (website.url) } }
            p.since {
                @match (status, website.status_since) {
                    (crate::domain::Status::Pending, _) => "Not checked yet.",
                    (_, Some(since)) => {
                        (status) " since " time datetime=(since.to_rfc3339()) { (fmt::time(since, tz)) }
                        " (" (for_how_long(since)) ")."
                    },
                    _ => "",
                }
                " Checked every " (humantime::format_duration(website.interval))
                ", timeout " (humantime::format_duration(website.timeout)) "."
            }
            @if admin {
                div.actions {
                    a.button href={ "/websites/" (id) "/edit" } { "Edit" }
                    @if website.paused {
                        form.inline method="post" action={ "/websites/" (id) "/resume" } {
                            button type="submit" { "Resume checks" }
                        }
                    } @else {
                        form.inline method="post" action={ "/websites/" (id) "/pause" } {
                            button type="submit" { "Pause checks" }
                        }
                    }
                    form.inline method="post" action={ "/websites/" (id) "/check" } {
                        button type="submit" { "Check now" }
                    }
                    a.button.danger href={ "/websites/" (id) "/delete" } { "Delete" }
                }
            }
            dl.uptime {
                div { dt { "Uptime 24 h" } dd { (fmt::percent(uptime.day.uptime())) } }
                div { dt { "Uptime 7 days" } dd { (fmt::percent(uptime.week.uptime())) } }
                div { dt { "Uptime 30 days" } dd { (fmt::percent(uptime.month.uptime())) } }
                div { dt { "Average response 24 h" } dd { (fmt::avg_ms(uptime.day.avg_response_time_ms())) } }
            }
            section {
                h2 { "Response time, last 24 hours" }
                (chart::response_time(series.0, &series.1, tz))
            }
            section {
                h2 { "Last 30 days" }
                @if history.is_empty() {
                    p.empty { "No checks in the last 30 days yet." }
                } @else {
                    table.history {
                        thead { tr {
                            th scope="col" { "Date" }
                            th scope="col" .num { "Availability" }
                            th scope="col" .num { "Average response" }
                            th scope="col" .num { "Checks" }
                        } }
                        tbody {
                            @for day in history.iter().rev() {
                                @let colour = day.colour();
                                tr class={ "day " (colour_class(colour)) } {
                                    td { time datetime=(day.date.to_string()) { (day.date.format("%a %Y-%m-%d")) } }
                                    td.num {
                                        span.verdict aria-hidden="true" { (colour_mark(colour)) } " "
                                        (fmt::percent(Some(day.availability())))
                                    }
                                    td.num { (fmt::avg_ms(day.avg_response_time_ms)) }
                                    td.num { (day.checks) }
                                }
                            }
                        }
                    }
                }
            }
            section {
                h2 { "Newest checks" }
                @if recent.is_empty() {
                    p.empty { "No checks yet." }
                } @else {
                    table.checks {
                        thead { tr {
                            th scope="col" { "Time" }
                            th scope="col" { "Result" }
                            th scope="col" { "Status code or error" }
                            th scope="col" .num { "Response" }
                        } }
                        tbody {
                            @for check in &recent {
                                tr {
                                    td { time datetime=(check.checked_at.to_rfc3339()) { (fmt::time(check.checked_at, tz)) } }
                                    td { (fmt::badge(if check.up { crate::domain::Status::Up } else { crate::domain::Status::Down })) }
                                    td {
                                        @if let Some(code) = check.status_code { "HTTP " (code) " " }
                                        @if let Some(error) = &check.error {
                                            span.error-kind { (error.kind.as_str()) } ": " (error.message)
                                        }
                                    }
                                    td.num { (fmt::ms(check.response_time_ms)) }
                                }
                            }
                        }
                    }
                }
            }
            p.tz { "Times in " (tz.name()) "." }
        }
    };
    let response = if is_htmx(&headers) {
        live.into_response()
    } else {
        let body = html! {
            nav.crumbs { a href="/" { "← All websites" } }
            div hx-ext="sse" sse-connect={ "/live?website=" (id) "&v=" (version) } { (live) }
        };
        layout::page(&website.name, caller.user(), body).into_response()
    };
    let mut response = response;
    response
        .headers_mut()
        .insert(header::VARY, header::HeaderValue::from_static("HX-Request"));
    Ok(response)
}

/// "3h 12m", or "less than a minute".
fn for_how_long(since: chrono::DateTime<Utc>) -> String {
    let minutes = (Utc::now() - since).num_minutes().max(0) as u64;
    if minutes == 0 {
        "less than a minute".to_owned()
    } else {
        humantime::format_duration(Duration::from_secs(minutes * 60)).to_string()
    }
}

fn colour_class(colour: Colour) -> &'static str {
    match colour {
        Colour::Green => "green",
        Colour::Yellow => "yellow",
        Colour::Red => "red",
    }
}

fn colour_mark(colour: Colour) -> &'static str {
    match colour {
        Colour::Green => "✓",
        Colour::Yellow => "!",
        Colour::Red => "✗",
    }
}
