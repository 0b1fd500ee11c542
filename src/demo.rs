//! `callops demo`: the whole system on embedded defaults.

use crate::config::Config;
use crate::store::Store;

pub async fn run(config: Config, _seconds: u64) -> anyhow::Result<()> {
    let store = Store::open_migrated(&config.database.url, config.database.max_connections).await?;
    let counts = store.call_counts_by_state().await?;
    println!("callops demo on {}: calls by state {counts:?}", store.url());
    Ok(())
}
