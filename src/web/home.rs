//! `/`: the websites with their current state.

use axum::extract::{OriginalUri, State};
use maud::{Markup, html};

use super::{PageError, layout, require_read};
use crate::auth::Caller;
use crate::domain::Status;
use crate::http::AppState;

pub async fn page(
    State(state): State<AppState>,
    caller: Caller,
    OriginalUri(uri): OriginalUri,
) -> Result<Markup, PageError> {
    require_read(&caller, &uri)?;
    let websites = state.websites.list().await.map_err(PageError::internal)?;
    let body = html! {
        h1 { "Websites" }
        @if websites.is_empty() {
            p.empty { "No websites yet." }
        } @else {
            table.websites {
                thead { tr { th { "Name" } th { "URL" } th { "Status" } th { "Response time" } } }
                tbody {
                    @for website in websites.iter() {
                        @let status = website.status();
                        tr {
                            td { (website.name) }
                            td { a href=(website.url) rel="noopener noreferrer" { (website.url) } }
                            td class=(status_class(status)) { (status) }
                            td {
                                @if let Some(check) = &website.last_check {
                                    (check.response_time_ms) " ms"
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    Ok(layout::page("Websites", caller.user(), body))
}

fn status_class(status: Status) -> &'static str {
    match status {
        Status::Up => "status up",
        Status::Down => "status down",
        Status::Pending => "status pending",
    }
}
