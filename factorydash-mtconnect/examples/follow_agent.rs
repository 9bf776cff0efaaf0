//! Follow a live agent: every observation once, in order, with gaps and restarts reported.
//!
//! Run with: `cargo run -p factorydash-mtconnect --example follow_agent -- [URL]`
//! (default: the NIST SMS Test Bed, <https://smstestbed.nist.gov/vds>; or a local
//! `factorydash replay recordings/nist-gfagie01-2016-05-02`, at http://127.0.0.1:5000).

use std::time::Duration;

use factorydash_mtconnect::client::{AgentClient, Backoff, Follower, FollowerConfig};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let url = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "https://smstestbed.nist.gov/vds".into());
    let mut follower = Follower::new(
        AgentClient::new(&url)?,
        FollowerConfig::new().with_count(1000),
    );
    let mut backoff = Backoff::default();
    loop {
        match follower.step().await {
            Ok(step) => {
                backoff.reset();
                if let Some(restart) = step.restarted {
                    println!(
                        "agent restarted: instanceId {} -> {}",
                        restart.previous_instance_id, restart.instance_id
                    );
                }
                if let Some(gap) = &step.gap {
                    println!("lost: sequences {}..{:?}", gap.from, gap.to);
                }
                for o in &step.batch.observations {
                    println!(
                        "{:>8} {} {} {} = {}",
                        o.sequence,
                        o.timestamp.to_rfc3339(),
                        o.device,
                        o.data_item_id,
                        o.value
                    );
                }
                if step.caught_up {
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
            Err(e) => {
                let wait = backoff.next_delay();
                eprintln!("{e}; retrying in {wait:?}");
                tokio::time::sleep(wait).await;
            }
        }
    }
}
