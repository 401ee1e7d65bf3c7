//! Leader election on a Kubernetes `coordination.k8s.io/v1` Lease, the way
//! Kubernetes' own controllers do it.
//!
//! Every retry period each replica reads the Lease. The holder renews it (writes a
//! new renew time); anyone else takes it when it is free or expired (its renew time
//! is older than its duration). Every write carries the `resourceVersion` that was
//! read, so of two replicas writing at once the API server accepts one and answers
//! the other 409 Conflict. A holder that has not managed to renew for the renew
//! deadline stops leading, which is before the Lease can expire for the others
//! (deadline < duration). Stepping down clears the holder, so the next replica
//! takes over at its next try instead of after the Lease expires.

use std::sync::Arc;
use std::time::Instant;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::Api;
use kube::api::PostParams;
use tokio::sync::{Notify, watch};
use tokio_util::sync::CancellationToken;

use super::{ElectionMode, Elector, LeaderState, Leadership, Timings};

/// The Lease's name, as the manifests' RBAC rules expect it.
pub const LEASE_NAME: &str = "leaderelection-scanner";

/// Elects through the Lease `name` in `namespace`, as `identity`.
pub fn elect(
    client: kube::Client,
    namespace: &str,
    name: &str,
    identity: &str,
    timings: Timings,
) -> (Leadership, Elector) {
    super::spawn_election(identity, ElectionMode::Kube, |channel, release| {
        LeaseElection {
            api: Api::namespaced(client, namespace),
            name: name.to_owned(),
            identity: identity.to_owned(),
            timings,
            sender: channel.sender,
            nudge: channel.nudge,
        }
        .run(release)
    })
}

/// The client for the cluster this process runs in (service account), or for
/// the one the local kubeconfig names.
pub async fn client() -> anyhow::Result<kube::Client> {
    Ok(kube::Client::try_default().await?)
}

struct LeaseElection {
    api: Api<Lease>,
    name: String,
    identity: String,
    timings: Timings,
    sender: watch::Sender<LeaderState>,
    nudge: Arc<Notify>,
}

/// What one try found.
enum Outcome {
    /// This replica holds the Lease, renewed just now.
    Holding,
    /// Someone else holds it (named when known).
    Held(Option<String>),
}

impl LeaseElection {
    async fn run(self, release: CancellationToken) {
        let mut renewed: Option<Instant> = None;
        let mut last_leader: Option<String> = None;
        loop {
            let attempt = tokio::time::timeout(self.timings.retry_period, self.try_once()).await;
            let outcome = match attempt {
                Ok(Ok(outcome)) => Some(outcome),
                Ok(Err(err)) => {
                    tracing::debug!(error = %err, "leader election: the Lease could not be read or written");
                    None
                }
                Err(_) => {
                    tracing::debug!("leader election: the API server did not answer in time");
                    None
                }
            };
            match outcome {
                Some(Outcome::Holding) => {
                    if renewed.is_none() {
                        tracing::info!(replica = %self.identity, lease = %self.name, "gained leadership: this replica runs the checker");
                    }
                    renewed = Some(Instant::now());
                    last_leader = Some(self.identity.clone());
                }
                Some(Outcome::Held(holder)) => {
                    if renewed.take().is_some() {
                        tracing::warn!(replica = %self.identity, "lost leadership: another replica holds the Lease");
                    }
                    last_leader = holder;
                }
                None => {
                    // Could not renew: keep leading only within the renew deadline.
                    if let Some(at) = renewed
                        && at.elapsed() >= self.timings.renew_deadline
                    {
                        tracing::warn!(replica = %self.identity, "lost leadership: the Lease could not be renewed in time");
                        renewed = None;
                        last_leader = None;
                    }
                }
            }
            let state = LeaderState {
                leading: renewed.is_some(),
                leader: last_leader.clone(),
            };
            self.sender.send_if_modified(|current| {
                let changed = *current != state;
                *current = state;
                changed
            });
            // Renew (or try again) one retry period from now, but never later than
            // the renew deadline allows.
            let wait = match renewed {
                Some(at) => self
                    .timings
                    .retry_period
                    .min(self.timings.renew_deadline.saturating_sub(at.elapsed())),
                None => self.timings.retry_period,
            };
            tokio::select! {
                () = release.cancelled() => break,
                () = tokio::time::sleep(wait) => {}
                () = self.nudge.notified(), if renewed.is_none() => {}
            }
        }
        if renewed.is_some() {
            match tokio::time::timeout(self.timings.retry_period, self.step_down()).await {
                Ok(Ok(())) => tracing::info!(replica = %self.identity, "released leadership"),
                _ => tracing::warn!("could not release the Lease; it expires by itself"),
            }
        }
        self.sender.send_replace(LeaderState::default());
    }

    fn duration(&self) -> SignedDuration {
        SignedDuration::try_from(self.timings.lease_duration).unwrap_or(SignedDuration::MAX)
    }

    fn seconds(&self) -> i32 {
        i32::try_from(self.timings.lease_duration.as_secs().max(1)).unwrap_or(i32::MAX)
    }

    async fn try_once(&self) -> kube::Result<Outcome> {
        let now = Timestamp::now();
        let Some(mut lease) = self.api.get_opt(&self.name).await? else {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(self.name.clone()),
                    ..ObjectMeta::default()
                },
                spec: Some(LeaseSpec {
                    holder_identity: Some(self.identity.clone()),
                    lease_duration_seconds: Some(self.seconds()),
                    acquire_time: Some(MicroTime(now)),
                    renew_time: Some(MicroTime(now)),
                    lease_transitions: Some(0),
                    ..LeaseSpec::default()
                }),
            };
            return match self.api.create(&PostParams::default(), &lease).await {
                Ok(_) => Ok(Outcome::Holding),
                Err(err) if conflict(&err) => Ok(Outcome::Held(None)),
                Err(err) => Err(err),
            };
        };
        let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
        let holder = spec
            .holder_identity
            .clone()
            .filter(|holder| !holder.is_empty());
        let mine = holder.as_deref() == Some(self.identity.as_str());
        if !mine {
            let duration = spec
                .lease_duration_seconds
                .map_or(self.duration(), |s| SignedDuration::from_secs(i64::from(s)));
            let expired = spec.renew_time.as_ref().is_none_or(|renewed| {
                renewed
                    .0
                    .saturating_add(duration)
                    .is_ok_and(|end| end < now)
            });
            if holder.is_some() && !expired {
                return Ok(Outcome::Held(holder));
            }
            spec.acquire_time = Some(MicroTime(now));
            spec.lease_transitions = Some(spec.lease_transitions.unwrap_or(0) + 1);
        }
        spec.holder_identity = Some(self.identity.clone());
        spec.lease_duration_seconds = Some(self.seconds());
        spec.renew_time = Some(MicroTime(now));
        // The resourceVersion read above makes this a compare-and-swap.
        match self
            .api
            .replace(&self.name, &PostParams::default(), &lease)
            .await
        {
            Ok(_) => Ok(Outcome::Holding),
            Err(err) if conflict(&err) => Ok(Outcome::Held(if mine { None } else { holder })),
            Err(err) => Err(err),
        }
    }

    /// Clears the holder so that the next replica need not wait for expiry.
    async fn step_down(&self) -> kube::Result<()> {
        let mut lease = self.api.get(&self.name).await?;
        let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
        if spec.holder_identity.as_deref() != Some(self.identity.as_str()) {
            return Ok(());
        }
        spec.holder_identity = None;
        spec.renew_time = None;
        spec.lease_duration_seconds = Some(1);
        self.api
            .replace(&self.name, &PostParams::default(), &lease)
            .await
            .map(|_| ())
    }
}

fn conflict(err: &kube::Error) -> bool {
    matches!(err, kube::Error::Api(status) if status.code == 409)
}
