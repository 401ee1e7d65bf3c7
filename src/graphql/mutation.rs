//! Changes. Websites and users need an admin; a signed-in user of any role may
//! change their own password and manage their own API tokens.

use std::time::Duration;

use async_graphql::{Context, ID, InputObject, Object, Result, SimpleObject};

use super::types::{ApiToken, Check, Role, User, Website};
use super::{caller, client, errors, parse_id, services};
use crate::auth::Via;
use crate::domain::{NewWebsite, ValidationError, WebsitePatch};

#[derive(InputObject)]
pub struct CreateWebsiteInput {
    pub name: String,
    pub url: String,
    /// Seconds between checks (default: the service's --check-interval).
    pub interval_seconds: Option<f64>,
    /// Seconds a check may take (default: --check-timeout, below the interval).
    pub timeout_seconds: Option<f64>,
}

#[derive(InputObject)]
pub struct UpdateWebsiteInput {
    pub name: Option<String>,
    pub url: Option<String>,
    pub interval_seconds: Option<f64>,
    pub timeout_seconds: Option<f64>,
    pub paused: Option<bool>,
}

#[derive(SimpleObject)]
pub struct LoginPayload {
    /// A session token: send it as `Authorization: Bearer …`.
    pub token: String,
    pub user: User,
}

#[derive(SimpleObject)]
pub struct CreatedApiToken {
    /// The secret, shown only this once.
    pub token: String,
    pub api_token: ApiToken,
}

fn seconds(value: Option<f64>, field: &'static str) -> Result<Option<Duration>> {
    crate::domain::duration_seconds(field, value).map_err(errors::invalid)
}

pub struct MutationRoot;

#[Object]
impl MutationRoot {
    /// Signs in; the token works as `Authorization: Bearer …` until `logout`.
    async fn login(
        &self,
        ctx: &Context<'_>,
        username: String,
        password: String,
    ) -> Result<LoginPayload> {
        let signed_in = services(ctx)
            .accounts
            .login(&username, &password, client(ctx).ip)
            .await
            .map_err(errors::login)?;
        Ok(LoginPayload {
            token: signed_in.token.expose().to_owned(),
            user: signed_in.user.into(),
        })
    }

    /// Ends the session the request was made with; false when it used none.
    async fn logout(&self, ctx: &Context<'_>) -> Result<bool> {
        let caller = caller(ctx);
        let identity = caller.require_user().map_err(errors::auth)?;
        match &identity.via {
            Via::Session { token, .. } => services(ctx)
                .accounts
                .logout(token)
                .await
                .map_err(errors::store),
            _ => Ok(false),
        }
    }

    async fn create_website(
        &self,
        ctx: &Context<'_>,
        input: CreateWebsiteInput,
    ) -> Result<Website> {
        caller(ctx).require_admin().map_err(errors::auth)?;
        let website = services(ctx)
            .websites
            .create(&NewWebsite {
                name: &input.name,
                url: &input.url,
                interval: seconds(input.interval_seconds, "intervalSeconds")?,
                timeout: seconds(input.timeout_seconds, "timeoutSeconds")?,
            })
            .await
            .map_err(errors::website)?;
        Ok(Website(website))
    }

    async fn update_website(
        &self,
        ctx: &Context<'_>,
        id: ID,
        input: UpdateWebsiteInput,
    ) -> Result<Website> {
        caller(ctx).require_admin().map_err(errors::auth)?;
        let id = parse_id(&id, "id")?;
        let website = services(ctx)
            .websites
            .update(
                id,
                &WebsitePatch {
                    name: input.name.as_deref(),
                    url: input.url.as_deref(),
                    interval: seconds(input.interval_seconds, "intervalSeconds")?,
                    timeout: seconds(input.timeout_seconds, "timeoutSeconds")?,
                    paused: input.paused,
                },
            )
            .await
            .map_err(errors::website)?;
        Ok(Website(website))
    }

    /// Deletes the website with its history; returns it as it was.
    async fn delete_website(&self, ctx: &Context<'_>, id: ID) -> Result<Website> {
        caller(ctx).require_admin().map_err(errors::auth)?;
        let id = parse_id(&id, "id")?;
        let website = services(ctx)
            .websites
            .delete(id)
            .await
            .map_err(errors::website)?;
        Ok(Website(website))
    }

    /// Checks the website now, on whichever replica is asked, and returns the stored check.
    async fn check_now(&self, ctx: &Context<'_>, id: ID) -> Result<Check> {
        caller(ctx).require_admin().map_err(errors::auth)?;
        let id = parse_id(&id, "id")?;
        let services = services(ctx);
        let check = services
            .websites
            .check_now(id, &services.probe)
            .await
            .map_err(errors::website)?;
        Ok(Check(check))
    }

    async fn create_api_token(&self, ctx: &Context<'_>, name: String) -> Result<CreatedApiToken> {
        let caller = caller(ctx);
        let me = caller.require_user().map_err(errors::auth)?;
        let (token, secret) = services(ctx)
            .accounts
            .create_api_token(me.user.id, &name)
            .await
            .map_err(errors::account)?;
        Ok(CreatedApiToken {
            token: secret.expose().to_owned(),
            api_token: token.into(),
        })
    }

    /// Revokes one of your tokens (admins: anyone's); effective at once.
    async fn revoke_api_token(&self, ctx: &Context<'_>, id: ID) -> Result<ApiToken> {
        let caller = caller(ctx);
        let me = caller.require_user().map_err(errors::auth)?;
        let id = parse_id(&id, "id")?;
        let token = services(ctx)
            .accounts
            .revoke_api_token(&me.user, id)
            .await
            .map_err(errors::account)?;
        Ok(token.into())
    }

    /// Changes your password and ends your other sessions.
    async fn change_password(
        &self,
        ctx: &Context<'_>,
        current_password: String,
        new_password: String,
    ) -> Result<bool> {
        let caller = caller(ctx);
        let me = caller.require_user().map_err(errors::auth)?;
        let accounts = &services(ctx).accounts;
        accounts
            .verify_login(&me.user.username, &current_password, client(ctx).ip)
            .await
            .map_err(|e| match e {
                crate::auth::LoginError::Rejected => errors::invalid(ValidationError::new(
                    "currentPassword",
                    "the current password is wrong",
                )),
                other => errors::login(other),
            })?;
        accounts
            .change_password(me.user.id, &new_password, caller.session())
            .await
            .map_err(errors::account)?;
        Ok(true)
    }

    /// Creates a user (admins only).
    async fn create_user(
        &self,
        ctx: &Context<'_>,
        username: String,
        password: String,
        #[graphql(desc = "VIEWER unless given")] role: Option<Role>,
    ) -> Result<User> {
        caller(ctx).require_admin().map_err(errors::auth)?;
        let role = role.unwrap_or(Role::Viewer);
        let user = services(ctx)
            .accounts
            .create_user(&username, &password, role.into())
            .await
            .map_err(errors::account)?;
        Ok(user.into())
    }

    /// Changes a user's role (admins only); the last admin stays an admin.
    async fn set_user_role(&self, ctx: &Context<'_>, id: ID, role: Role) -> Result<User> {
        caller(ctx).require_admin().map_err(errors::auth)?;
        let id = parse_id(&id, "id")?;
        let user = services(ctx)
            .accounts
            .set_role(id, role.into())
            .await
            .map_err(errors::account)?;
        Ok(user.into())
    }

    /// Deletes a user with their sessions and tokens (admins only); never the last admin.
    async fn delete_user(&self, ctx: &Context<'_>, id: ID) -> Result<User> {
        caller(ctx).require_admin().map_err(errors::auth)?;
        let id = parse_id(&id, "id")?;
        let user = services(ctx)
            .accounts
            .delete_user(id)
            .await
            .map_err(errors::account)?;
        Ok(user.into())
    }
}
