//! Queries across shards on datafusion-distributed, behind the
//! `distributed` feature (docs/scale-out.md, §2–§5).
//!
//! This module owns everything that touches the engine's API, so that an
//! upgrade of the engine changes this one place (\[SO12\]): the plan nodes
//! and their codec (`nodes.rs`), the cluster file (`cluster.rs`), the
//! worker that serves a node's shards ([`worker`], [`serve`]), and the
//! coordinator that plans a query, has each shard's part run where the
//! shard lives, and combines the parts ([`Coordinator`]). What a shard
//! computes and how parts combine is not here: it is the engine-independent
//! `query::parts` ([`Query::run_shard_part`], [`Query::combine`]).
//!
//! A query becomes one distributed stage: the leaf `TallyShardExec` has one
//! partition per shard, and the planner gives it one task per shard
//! (\[SO29\]). Each task's copy of the leaf runs its own shard; the worker
//! resolver lists one URL per shard (a node's URL once for each of its
//! shards), and the routing handler sends task `s` to the node of shard
//! `s`. One task per shard, rather than per node, keeps the stage
//! distributed with a single worker too: with one task on each side the
//! engine would run the leaf in the coordinator, which holds no shard.

mod cluster;
mod nodes;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::common::{DataFusionError, Result as DfResult};
use datafusion::datasource::TableType;
use datafusion::execution::SessionStateBuilder;
use datafusion::logical_expr::Expr;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::prelude::SessionContext;
use datafusion_distributed::{
    ChannelResolver, DesiredTaskCountEvent, DesiredTaskCountEventResponse, DistributedExt,
    DistributedGetterExt, DistributedLeafExec, RouteTasksEvent, RouteTasksEventResponse,
    ScaleUpLeafNodeEvent, ScaleUpLeafNodeEventResponse, SessionStateBuilderExt, Worker,
    WorkerChannel, WorkerQueryContext, WorkerResolver, grpc,
};
use url::Url;

pub use cluster::{Cluster, Node};
use nodes::{ShardTask, TallyCodec, TallyFinalExec, TallyShardExec};

use crate::Db;
use crate::error::{Error, Result};
use crate::query::{Query, ShardPart, Table};
use crate::shard::Shard;

/// The shards one worker serves, open: each shard's number and database.
#[derive(Debug)]
pub struct ShardSet {
    node: String,
    shard_count: u32,
    databases: BTreeMap<u32, Db>,
}

impl ShardSet {
    /// Opens the shards the node `name` of `cluster` serves, after checking
    /// each directory's `SHARD` marker (\[SO3\]): a directory of another
    /// shard, or of none, is refused with its path named.
    pub fn open(cluster: &Cluster, name: &str) -> Result<ShardSet> {
        let node = cluster.node(name)?;
        let mut databases = BTreeMap::new();
        for (shard, dir) in node.shards() {
            shard.check_marker(dir)?;
            databases.insert(shard.index(), Db::open(dir)?);
        }
        Ok(ShardSet {
            node: name.to_string(),
            shard_count: cluster.shard_count(),
            databases,
        })
    }

    /// A set of open databases, each given with the shard it holds, served
    /// under the name `node`: for a cluster in one process
    /// ([`Coordinator::in_process`]).
    pub fn from_databases(node: &str, databases: Vec<(Shard, Db)>) -> Result<ShardSet> {
        let mut shard_count = None;
        let mut map = BTreeMap::new();
        for (shard, db) in databases {
            if shard_count.is_some_and(|n| n != shard.count()) {
                return Err(Error::Invalid(format!(
                    "{shard} does not belong with shards of {} in one cluster",
                    shard_count.unwrap_or(0)
                )));
            }
            shard_count = Some(shard.count());
            if map.insert(shard.index(), db).is_some() {
                return Err(Error::Invalid(format!("{shard} is given twice")));
            }
        }
        Ok(ShardSet {
            node: node.to_string(),
            shard_count: shard_count.unwrap_or(1),
            databases: map,
        })
    }

    /// Runs the shard part of `query` in shard `shard`, on its latest
    /// commit: an import on the same machine is seen once it commits
    /// (\[SO31\]). Errors name the shard and the node.
    fn run(&self, shard: u32, query: &Query) -> Result<ShardPart> {
        let in_shard = |e: Error| {
            Error::Invalid(format!(
                "shard {shard} of {} on node {}: {e}",
                self.shard_count, self.node
            ))
        };
        let db = self.databases.get(&shard).ok_or_else(|| {
            in_shard(Error::Invalid(
                "the node does not serve this shard (is the cluster file the same on every machine?)"
                    .to_string(),
            ))
        })?;
        db.refresh().map_err(in_shard)?;
        query.run_shard_part(db).map_err(in_shard)
    }
}

/// The datafusion-distributed worker over `shards`: it decodes tally's
/// leaf (and checks its query) and runs it on these databases.
pub fn worker(shards: Arc<ShardSet>) -> Worker {
    Worker::from_session_builder(move |ctx: WorkerQueryContext| {
        let shards = Arc::clone(&shards);
        async move {
            let mut builder = ctx.builder;
            let config = builder.config().get_or_insert_default();
            config.set_distributed_user_codec(TallyCodec);
            config.set_extension(shards);
            Ok::<_, DataFusionError>(builder.build())
        }
    })
}

/// Serves `shards` on `listen` (gRPC, Arrow Flight) until Ctrl-C or
/// SIGTERM, calling `ready` with the bound address once it listens.
pub fn serve(shards: ShardSet, listen: SocketAddr, ready: impl FnOnce(SocketAddr)) -> Result<()> {
    let runtime = runtime()?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .map_err(|e| Error::Invalid(format!("cannot listen on {listen}: {e}")))?;
        let bound = listener
            .local_addr()
            .map_err(|e| Error::Invalid(format!("cannot listen on {listen}: {e}")))?;
        ready(bound);
        // Every accepted connection without Nagle's algorithm: a task's
        // answer is a few small HTTP/2 frames, and with Nagle each could
        // wait for the client's delayed ACK (40 ms on Linux), which showed
        // as runs of benches/distributed.sh 40 and 80 ms slower than the
        // rest. tonic's own `tcp_nodelay` does not apply to an incoming
        // stream handed to it, so the stream sets it.
        let incoming =
            tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true));
        tonic::transport::Server::builder()
            .add_service(worker(Arc::new(shards)).into_worker_server())
            .serve_with_incoming_shutdown(incoming, shutdown())
            .await
            .map_err(|e| Error::Invalid(format!("the worker on {bound} failed: {e}")))
    })
}

/// Resolves on Ctrl-C or SIGTERM.
async fn shutdown() {
    #[cfg(unix)]
    {
        let terminate = async {
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(mut signal) => {
                    signal.recv().await;
                }
                // Without the handler only Ctrl-C stops the worker.
                Err(_) => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {},
            _ = terminate => {},
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// A runtime for the engine's async code, on every core.
fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::Invalid(format!("cannot start the async runtime: {e}")))
}

/// Takes a query, has every shard run its part where the shard lives, and
/// combines the parts: the coordinator of \[SO31\], in the process that runs
/// `tally query --cluster`.
pub struct Coordinator {
    runtime: tokio::runtime::Runtime,
    context: SessionContext,
    shard_count: u32,
}

impl std::fmt::Debug for Coordinator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Coordinator")
            .field("shard_count", &self.shard_count)
            .finish_non_exhaustive()
    }
}

/// The worker URL of each shard, in shard order: the engine's worker
/// resolver, and what the routing handler reads. A cluster of one shard
/// lists its URL twice, so that the stage still has two tasks (the second
/// with no shard) and stays on the workers ([`one_task_per_shard`]).
#[derive(Debug, Clone)]
struct ShardUrls(Vec<Url>);

impl ShardUrls {
    fn new(mut urls: Vec<Url>) -> ShardUrls {
        if let [only] = urls.as_slice() {
            urls.push(only.clone());
        }
        ShardUrls(urls)
    }
}

impl WorkerResolver for ShardUrls {
    fn get_urls(&self) -> DfResult<Vec<Url>> {
        Ok(self.0.clone())
    }
}

impl Coordinator {
    /// A coordinator for the workers of `cluster`, reached over the
    /// network.
    pub fn new(cluster: &Cluster) -> Result<Coordinator> {
        let runtime = runtime()?;
        let urls = ShardUrls::new(cluster.shard_urls());
        let builder = SessionStateBuilder::new()
            .with_default_features()
            .with_distributed_worker_resolver(urls);
        Ok(Coordinator {
            runtime,
            context: SessionContext::from(with_tally(builder).build()),
            shard_count: cluster.shard_count(),
        })
    }

    /// A whole cluster in this process: one worker serving `shards`,
    /// reached through an in-memory channel instead of a socket (the
    /// engine's in-memory channel resolver). For tests, and for trying the
    /// distributed plan on one machine.
    pub fn in_process(shards: ShardSet) -> Result<Coordinator> {
        let runtime = runtime()?;
        let shard_count = shards.shard_count;
        let channel = {
            let _entered = runtime.enter();
            InMemoryChannel::start(worker(Arc::new(shards)))?
        };
        let url = Url::parse(InMemoryChannel::URL)
            .map_err(|e| Error::Invalid(format!("the in-process URL: {e}")))?;
        let urls = ShardUrls::new(vec![url; shard_count as usize]);
        let builder = SessionStateBuilder::new()
            .with_default_features()
            .with_distributed_worker_resolver(urls)
            .with_distributed_channel_resolver(channel);
        Ok(Coordinator {
            runtime,
            context: SessionContext::from(with_tally(builder).build()),
            shard_count,
        })
    }

    /// Runs `query` over every shard: exactly the table, notices included,
    /// that one database holding every account would give.
    pub fn run(&self, query: &Query) -> Result<Table> {
        self.runtime.block_on(self.run_async(query))
    }

    async fn run_async(&self, query: &Query) -> Result<Table> {
        let task = ShardTask::new(query, query.time_range(), self.shard_count);
        let leaf = Arc::new(TallyShardExec::new(task, query.clone()));
        let df = self
            .context
            .read_table(Arc::new(PartsTable { leaf }))
            .map_err(failed)?;
        let distributed = df.create_physical_plan().await.map_err(failed)?;
        let answer = Arc::new(Mutex::new(None));
        let last = Arc::new(TallyFinalExec::new(
            query.clone(),
            self.shard_count,
            distributed,
            Arc::clone(&answer),
        ));
        datafusion::physical_plan::collect(last, self.context.task_ctx())
            .await
            .map_err(failed)?;
        let table = answer.lock().ok().and_then(|mut slot| slot.take());
        table.ok_or_else(|| Error::Invalid("the cluster query gave no answer".to_string()))
    }
}

/// Adds tally's planning to a session: the distributed planner, the codec,
/// and the handlers that give the leaf one task per shard and send each
/// task to its shard's node.
fn with_tally(builder: SessionStateBuilder) -> SessionStateBuilder {
    builder
        .with_distributed_planner()
        .with_distributed_user_codec(TallyCodec)
        .with_distributed_desired_task_count_handler(one_task_per_shard)
        .with_distributed_scale_up_leaf_node_handler(a_copy_per_task)
        .with_distributed_route_tasks_handler(to_the_shards_node)
}

/// Asks for one task per shard, and at least two: with one task on each
/// side of the network boundary the engine removes the boundary and runs
/// the leaf in the coordinator, which holds no shard.
fn one_task_per_shard(
    ev: DesiredTaskCountEvent,
) -> Option<DfResult<DesiredTaskCountEventResponse>> {
    let leaf = ev.plan.downcast_ref::<TallyShardExec>()?;
    Some(Ok(DesiredTaskCountEventResponse::desired(
        (leaf.shard_count() as usize).max(2),
    )))
}

/// Gives task `i` the copy of the leaf that runs the shards `s` with
/// `s mod tasks = i`: shard `i` alone when there is a task per shard.
fn a_copy_per_task(ev: ScaleUpLeafNodeEvent) -> Option<DfResult<ScaleUpLeafNodeEventResponse>> {
    let leaf = ev.plan.downcast_ref::<TallyShardExec>()?;
    let tasks = ev.task_count.max(1);
    let copies = (0..tasks).map(|task| {
        let shards = leaf
            .shards()
            .iter()
            .copied()
            .filter(|&s| s as usize % tasks == task)
            .collect();
        Arc::new(leaf.on(shards)) as Arc<dyn ExecutionPlan>
    });
    Some(
        DistributedLeafExec::try_new(Arc::clone(ev.plan), copies)
            .map(|leaf| ScaleUpLeafNodeEventResponse::new(Arc::new(leaf))),
    )
}

/// Sends each task of tally's leaf to the node of its shards. A task whose
/// shards live on two nodes cannot be placed, and fails the query.
fn to_the_shards_node(ev: RouteTasksEvent) -> Option<DfResult<RouteTasksEventResponse>> {
    let route = || -> DfResult<Option<RouteTasksEventResponse>> {
        let mut copies: Option<Vec<Arc<dyn ExecutionPlan>>> = None;
        ev.plan.apply(|node| {
            if let Some(leaf) = node.downcast_ref::<DistributedLeafExec>()
                && leaf.original().downcast_ref::<TallyShardExec>().is_some()
            {
                copies = Some(leaf.variants().to_vec());
                return Ok(TreeNodeRecursion::Stop);
            }
            Ok(TreeNodeRecursion::Continue)
        })?;
        let Some(copies) = copies else {
            return Ok(None);
        };
        let urls = ev
            .task_ctx
            .session_config()
            .get_distributed_worker_resolver()?
            .get_urls()?;
        let mut routes = Vec::with_capacity(ev.task_count);
        for task in 0..ev.task_count {
            let shards = copies
                .get(task)
                .and_then(|copy| copy.downcast_ref::<TallyShardExec>())
                .map(|leaf| leaf.shards().to_vec())
                .unwrap_or_default();
            let mut nodes = shards.iter().filter_map(|&s| urls.get(s as usize));
            let Some(first) = nodes.next() else {
                // A task with no shard yields nothing; any worker will do.
                routes.push(urls.first().cloned().ok_or_else(|| {
                    DataFusionError::Plan("the cluster has no worker".to_string())
                })?);
                continue;
            };
            if nodes.any(|url| url != first) {
                return Err(DataFusionError::Plan(format!(
                    "task {task} would read shards {shards:?}, which live on different nodes"
                )));
            }
            routes.push(first.clone());
        }
        Ok(Some(RouteTasksEventResponse::new(routes)))
    };
    route().transpose()
}

/// A query error from the engine as tally's own: tally's error when the
/// engine carries one, else the engine's sentence.
fn failed(e: DataFusionError) -> Error {
    match e {
        DataFusionError::External(inner) => match inner.downcast::<Error>() {
            Ok(tally) => *tally,
            Err(other) => Error::Invalid(format!("the cluster query failed: {other}")),
        },
        DataFusionError::Context(_, inner) => failed(*inner),
        other => Error::Invalid(format!("the cluster query failed: {other}")),
    }
}

/// The table the coordinator reads: its scan is tally's leaf.
#[derive(Debug)]
struct PartsTable {
    leaf: Arc<TallyShardExec>,
}

#[async_trait]
impl TableProvider for PartsTable {
    fn schema(&self) -> datafusion::arrow::datatypes::SchemaRef {
        self.leaf.schema()
    }

    fn table_type(&self) -> TableType {
        TableType::Temporary
    }

    async fn scan(
        &self,
        _: &dyn Session,
        projection: Option<&Vec<usize>>,
        _: &[Expr],
        _: Option<usize>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        let columns = self.leaf.schema().fields().len();
        match projection {
            Some(p) if *p != (0..columns).collect::<Vec<_>>() => Err(DataFusionError::Plan(
                "the shards' parts are read whole".to_string(),
            )),
            _ => Ok(Arc::clone(&self.leaf) as Arc<dyn ExecutionPlan>),
        }
    }
}

/// A channel to a worker in this process, through an in-memory pipe: the
/// engine's in-memory channel resolver (`examples/in_memory_cluster.rs`).
#[derive(Clone)]
struct InMemoryChannel {
    channel: grpc::BoxCloneSyncChannel,
}

impl InMemoryChannel {
    /// The URL every shard's task goes to; no socket is opened.
    const URL: &'static str = "http://in-process:50051";

    /// Starts `worker` on the current runtime, behind an in-memory pipe.
    fn start(worker: Worker) -> Result<InMemoryChannel> {
        let (client, server) = tokio::io::duplex(1 << 20);
        let mut client = Some(client);
        let endpoint = tonic::transport::Endpoint::try_from(Self::URL)
            .map_err(|e| Error::Invalid(format!("the in-process endpoint: {e}")))?;
        let channel = endpoint.connect_with_connector_lazy(tower::service_fn(move |_| {
            let client = client.take();
            async move {
                // The pipe is one connection; HTTP/2 carries every task's
                // streams over it, so it is asked for once.
                client
                    .map(hyper_util::rt::TokioIo::new)
                    .ok_or_else(|| std::io::Error::other("the in-process pipe was taken twice"))
            }
        }));
        tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(worker.into_worker_server())
                .serve_with_incoming(tokio_stream::once(Ok::<_, std::io::Error>(server))),
        );
        Ok(InMemoryChannel {
            channel: grpc::BoxCloneSyncChannel::new(channel),
        })
    }
}

#[async_trait]
impl ChannelResolver for InMemoryChannel {
    async fn get_worker_client_for_url(&self, _: &Url) -> DfResult<Box<dyn WorkerChannel>> {
        Ok(grpc::create_worker_client(self.channel.clone()))
    }
}
