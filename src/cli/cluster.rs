//! `tally worker` and `tally query --cluster` (docs/scale-out.md, [SO31]):
//! the flags resolved, and the library's `distributed` module called. The
//! module exists only with the `distributed` feature; without it both say
//! which feature to build with.

use std::path::Path;
use std::process::ExitCode;

use super::args::WorkerArgs;
use super::usage_error;
use crate::{Error, Query, Table};

/// What a build without the `distributed` feature says.
#[cfg(not(feature = "distributed"))]
const NO_DISTRIBUTED: &str = "{what} needs tally built with the `distributed` feature \
     (cargo build --release --features distributed); this build runs on one machine only";

#[cfg(not(feature = "distributed"))]
pub(crate) fn worker(_args: &WorkerArgs) -> Result<ExitCode, Error> {
    Ok(usage_error(
        &NO_DISTRIBUTED.replace("{what}", "tally worker"),
    ))
}

/// Runs `query` over the cluster of the file `cluster`; `Err` with a usage
/// message when this build cannot.
#[cfg(not(feature = "distributed"))]
pub(crate) fn query(_cluster: &Path, _query: &Query) -> Result<Result<Table, String>, Error> {
    Ok(Err(NO_DISTRIBUTED.replace("{what}", "--cluster")))
}

#[cfg(feature = "distributed")]
pub(crate) fn query(cluster: &Path, query: &Query) -> Result<Result<Table, String>, Error> {
    use crate::distributed::{Cluster, Coordinator};
    let cluster = Cluster::read(cluster)?;
    Ok(Ok(Coordinator::new(&cluster)?.run(query)?))
}

#[cfg(feature = "distributed")]
pub(crate) fn worker(args: &WorkerArgs) -> Result<ExitCode, Error> {
    use std::io::Write;
    use std::net::{Ipv4Addr, SocketAddr, ToSocketAddrs};

    use crate::distributed::{Cluster, ShardSet, serve};

    let cluster = Cluster::read(&args.cluster)?;
    let node = cluster.node(&args.node)?;
    // Loopback unless --listen says otherwise, as `tally serve` does; the
    // port is the one the cluster file gives the node.
    let listen = match &args.listen {
        Some(text) => match text.to_socket_addrs().map(|mut a| a.next()) {
            Ok(Some(addr)) => addr,
            _ => {
                return Ok(usage_error(&format!(
                    "--listen {text:?} is not an address like 10.0.0.1:7070"
                )));
            }
        },
        None => {
            let Some(port) = node.url().port_or_known_default() else {
                return Ok(usage_error(&format!(
                    "the url of node {} has no port; give --listen",
                    node.name()
                )));
            };
            SocketAddr::from((Ipv4Addr::LOCALHOST, port))
        }
    };
    let shards: Vec<String> = node.shards().map(|(s, _)| s.index().to_string()).collect();
    let described = format!(
        "node {} serves shards {} of {}",
        node.name(),
        shards.join(", "),
        cluster.shard_count()
    );
    let set = ShardSet::open(&cluster, &args.node)?;
    serve(set, listen, |bound| {
        let _ = writeln!(
            std::io::stderr().lock(),
            "tally worker: {described} on {bound}"
        );
    })?;
    Ok(ExitCode::SUCCESS)
}
