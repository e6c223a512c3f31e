//! The two plan nodes and the codec of a query across shards
//! (docs/scale-out.md, \[SO29\]): `TallyShardExec`, the leaf that runs the
//! shard part of a query in each shard, one DataFusion partition per shard;
//! `TallyFinalExec`, which combines the shards' parts at the coordinator;
//! and `TallyCodec`, which carries the leaf to a worker.

use std::fmt;
use std::sync::{Arc, Mutex};

use datafusion::arrow::array::{BinaryArray, RecordBatch, UInt32Array};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::common::{DataFusionError, Result as DfResult};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_expr::{EquivalenceProperties, Partitioning, PhysicalExpr};
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, Distribution, ExecutionPlan, PlanProperties,
};
use datafusion_proto::physical_plan::{PhysicalExtensionCodec, PhysicalProtoConverterExtension};
use futures::StreamExt;
use serde::{Deserialize, Serialize};

use super::ShardSet;
use crate::db::TimeRange;
use crate::query::{Query, ShardPart, Table};
use crate::shard::Shard;

/// The version of the leaf's wire form; a worker refuses any other, so that
/// a coordinator and a worker of different tally versions fail loudly.
const WIRE_FORMAT: u32 = 1;

/// The most bytes a leaf's wire form may take. The query text is limited
/// far below this by the parser (\[Q11a\]); the shard list is at most 65,536
/// numbers.
const MAX_WIRE_BYTES: usize = 4 << 20;

/// What a `TallyShardExec` carries to a worker: the query as its canonical
/// text (\[Q17\]), the time range, and the shards it runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ShardTask {
    format: u32,
    /// The canonical text of the checked query: parse ∘ print is the
    /// identity, so the worker checks the very query the coordinator did.
    query: String,
    from: i64,
    to: i64,
    /// How many shards the cluster has: also the leaf's partition count.
    shard_count: u32,
    /// The shards this copy of the leaf runs, ascending.
    shards: Vec<u32>,
}

impl ShardTask {
    /// The task of running `query` on every shard of `shard_count`.
    pub(crate) fn new(query: &Query, range: TimeRange, shard_count: u32) -> ShardTask {
        ShardTask {
            format: WIRE_FORMAT,
            query: query.to_string(),
            from: range.from,
            to: range.to,
            shard_count,
            shards: (0..shard_count).collect(),
        }
    }

    /// The same task on `shards` alone.
    fn on(&self, shards: Vec<u32>) -> ShardTask {
        ShardTask {
            shards,
            ..self.clone()
        }
    }

    /// Checks a task that came from the network: its version, its shards,
    /// and its query, parsed and checked again under the parser's limits.
    fn check(&self) -> crate::Result<Query> {
        if self.format != WIRE_FORMAT {
            return Err(crate::Error::Invalid(format!(
                "a task of wire format {} came, and this tally reads {WIRE_FORMAT}: \
                 run the same tally version on the coordinator and the workers",
                self.format
            )));
        }
        let mut previous = None;
        for &shard in &self.shards {
            Shard::new(shard, self.shard_count)?;
            if previous.is_some_and(|p| p >= shard) {
                return Err(crate::Error::Invalid(
                    "a task lists its shards out of order or twice".to_string(),
                ));
            }
            previous = Some(shard);
        }
        Ok(Query::parse(&self.query)?.range(TimeRange {
            from: self.from,
            to: self.to,
        }))
    }
}

/// The leaf: runs the shard part of a query ([`Query::run_shard_part`]) in
/// each of its shards. It has one partition per shard of the cluster, and a
/// partition whose shard it was not given yields nothing, so that the
/// per-task copies of the leaf never answer for the same shard twice
/// (datafusion-distributed PR #590). Each row is one shard's part:
/// `shard: UInt32, part: Binary` (the part serialised as JSON).
#[derive(Debug)]
pub(crate) struct TallyShardExec {
    task: ShardTask,
    /// The query `task` holds, checked.
    query: Query,
    properties: Arc<PlanProperties>,
}

/// The schema of the leaf's rows.
fn parts_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("shard", DataType::UInt32, false),
        Field::new("part", DataType::Binary, false),
    ]))
}

impl TallyShardExec {
    /// The leaf of `task`, whose query was checked as `query`.
    pub(crate) fn new(task: ShardTask, query: Query) -> TallyShardExec {
        let partitions = task.shard_count as usize;
        let properties = Arc::new(PlanProperties::new(
            EquivalenceProperties::new(parts_schema()),
            Partitioning::UnknownPartitioning(partitions),
            EmissionType::Final,
            Boundedness::Bounded,
        ));
        TallyShardExec {
            task,
            query,
            properties,
        }
    }

    /// The same leaf, running `shards` alone: the copy one task gets.
    pub(crate) fn on(&self, shards: Vec<u32>) -> TallyShardExec {
        TallyShardExec::new(self.task.on(shards), self.query.clone())
    }

    /// How many shards the cluster has.
    pub(crate) fn shard_count(&self) -> u32 {
        self.task.shard_count
    }

    /// The shards this copy runs.
    pub(crate) fn shards(&self) -> &[u32] {
        &self.task.shards
    }
}

impl DisplayAs for TallyShardExec {
    fn fmt_as(&self, _: DisplayFormatType, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "TallyShardExec: query={:?} shards={:?} of {}",
            self.task.query, self.task.shards, self.task.shard_count
        )
    }
}

/// A DataFusion error carrying tally's own, so that its sentence reaches
/// the user unchanged.
fn external(e: crate::Error) -> DataFusionError {
    DataFusionError::External(Box::new(e))
}

impl ExecutionPlan for TallyShardExec {
    fn name(&self) -> &str {
        "TallyShardExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        Vec::new()
    }

    fn apply_expressions(
        &self,
        _: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> DfResult<TreeNodeRecursion>,
    ) -> DfResult<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn with_new_children(
        self: Arc<Self>,
        _: Vec<Arc<dyn ExecutionPlan>>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        Ok(self)
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> DfResult<SendableRecordBatchStream> {
        let schema = parts_schema();
        let shard = u32::try_from(partition).ok();
        let Some(shard) = shard.filter(|s| self.task.shards.contains(s)) else {
            // Not this copy's shard: another task answers for it.
            return Ok(Box::pin(RecordBatchStreamAdapter::new(
                schema,
                futures::stream::empty(),
            )));
        };
        let shard_set = context
            .session_config()
            .get_extension::<ShardSet>()
            .ok_or_else(|| {
                external(crate::Error::Invalid(format!(
                    "shard {shard} was sent to a process that serves no shards"
                )))
            })?;
        let query = self.query.clone();
        let out_schema = Arc::clone(&schema);
        let answer = async move {
            // The shard part reads and computes on tally's own threads
            // (rayon), not on the async runtime's.
            let part = tokio::task::spawn_blocking(move || shard_set.run(shard, &query))
                .await
                .map_err(|e| DataFusionError::External(Box::new(e)))?
                .map_err(external)?;
            let bytes =
                serde_json::to_vec(&part).map_err(|e| DataFusionError::External(Box::new(e)))?;
            let batch = RecordBatch::try_new(
                out_schema,
                vec![
                    Arc::new(UInt32Array::from(vec![shard])),
                    Arc::new(BinaryArray::from_vec(vec![bytes.as_slice()])),
                ],
            )?;
            Ok::<RecordBatch, DataFusionError>(batch)
        };
        Ok(Box::pin(RecordBatchStreamAdapter::new(
            schema,
            futures::stream::once(answer),
        )))
    }
}

/// Runs at the coordinator, above the network boundary, in one partition:
/// gathers every shard's part from its input, checks that each shard
/// answered exactly once, and combines them ([`Query::combine`]). Its rows
/// are the query's table in Arrow's types (those of `tally query --format
/// arrow`); the table itself, with its notices, is left in `answer` for
/// the caller.
#[derive(Debug)]
pub(crate) struct TallyFinalExec {
    query: Query,
    shard_count: u32,
    input: Arc<dyn ExecutionPlan>,
    properties: Arc<PlanProperties>,
    answer: Arc<Mutex<Option<Table>>>,
}

impl TallyFinalExec {
    /// The final node of `query` over the parts `input` yields.
    pub(crate) fn new(
        query: Query,
        shard_count: u32,
        input: Arc<dyn ExecutionPlan>,
        answer: Arc<Mutex<Option<Table>>>,
    ) -> TallyFinalExec {
        let schema = crate::output::arrow::schema(&query.columns());
        let properties = Arc::new(PlanProperties::new(
            EquivalenceProperties::new(schema),
            Partitioning::UnknownPartitioning(1),
            EmissionType::Final,
            Boundedness::Bounded,
        ));
        TallyFinalExec {
            query,
            shard_count,
            input,
            properties,
            answer,
        }
    }
}

impl DisplayAs for TallyFinalExec {
    fn fmt_as(&self, _: DisplayFormatType, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TallyFinalExec: query={:?}", self.query.to_string())
    }
}

/// Decodes every shard's part from the leaf's batches, each shard exactly
/// once, in shard order.
fn parts_of(batches: &[RecordBatch], shard_count: u32) -> crate::Result<Vec<ShardPart>> {
    let mut parts: Vec<Option<ShardPart>> = (0..shard_count).map(|_| None).collect();
    let wrong =
        |what: &str| crate::Error::Invalid(format!("the shards' answers are damaged: {what}"));
    for batch in batches {
        let shards = batch
            .column_by_name("shard")
            .and_then(|c| c.as_any().downcast_ref::<UInt32Array>())
            .ok_or_else(|| wrong("no shard column"))?;
        let bytes = batch
            .column_by_name("part")
            .and_then(|c| c.as_any().downcast_ref::<BinaryArray>())
            .ok_or_else(|| wrong("no part column"))?;
        for (shard, bytes) in shards.iter().zip(bytes.iter()) {
            let (Some(shard), Some(bytes)) = (shard, bytes) else {
                return Err(wrong("a null"));
            };
            let slot = parts
                .get_mut(shard as usize)
                .ok_or_else(|| wrong(&format!("shard {shard} is not a shard of {shard_count}")))?;
            if slot.is_some() {
                return Err(wrong(&format!("shard {shard} answered twice")));
            }
            let part =
                serde_json::from_slice(bytes).map_err(|e| wrong(&format!("shard {shard}: {e}")))?;
            *slot = Some(part);
        }
    }
    parts
        .into_iter()
        .enumerate()
        .map(|(shard, part)| part.ok_or_else(|| wrong(&format!("shard {shard} did not answer"))))
        .collect()
}

impl ExecutionPlan for TallyFinalExec {
    fn name(&self) -> &str {
        "TallyFinalExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn required_input_distribution(&self) -> Vec<Distribution> {
        vec![Distribution::SinglePartition]
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.input]
    }

    fn apply_expressions(
        &self,
        _: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> DfResult<TreeNodeRecursion>,
    ) -> DfResult<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn with_new_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        let [input] = <[Arc<dyn ExecutionPlan>; 1]>::try_from(children).map_err(|_| {
            DataFusionError::Internal("TallyFinalExec takes exactly one input".to_string())
        })?;
        Ok(Arc::new(TallyFinalExec::new(
            self.query.clone(),
            self.shard_count,
            input,
            Arc::clone(&self.answer),
        )))
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> DfResult<SendableRecordBatchStream> {
        if partition != 0 {
            return Err(DataFusionError::Internal(format!(
                "TallyFinalExec has one partition, not {}",
                partition + 1
            )));
        }
        let schema = self.schema();
        let input_partitions = self.input.properties().partitioning.partition_count();
        let streams = (0..input_partitions)
            .map(|p| self.input.execute(p, Arc::clone(&context)))
            .collect::<DfResult<Vec<_>>>()?;
        let query = self.query.clone();
        let shard_count = self.shard_count;
        let answer = Arc::clone(&self.answer);
        let out_schema = Arc::clone(&schema);
        let combined = async move {
            let mut batches = Vec::new();
            for mut stream in streams {
                while let Some(batch) = stream.next().await {
                    batches.push(batch?);
                }
            }
            let table = parts_of(&batches, shard_count)
                .and_then(|parts| query.combine(parts))
                .map_err(external)?;
            let batch = crate::output::arrow::record_batch(&out_schema, table.rows())?;
            if let Ok(mut slot) = answer.lock() {
                *slot = Some(table);
            }
            Ok::<RecordBatch, DataFusionError>(batch)
        };
        Ok(Box::pin(RecordBatchStreamAdapter::new(
            schema,
            futures::stream::once(combined),
        )))
    }
}

/// Carries a `TallyShardExec` to a worker and back into a plan node there.
/// The coordinator encodes; a worker decodes, with every length checked,
/// and checks the query again: what comes from the network is not trusted
/// (\[SO29\], \[SO33\]).
#[derive(Debug)]
pub(crate) struct TallyCodec;

impl PhysicalExtensionCodec for TallyCodec {
    fn try_decode(
        &self,
        buf: &[u8],
        inputs: &[Arc<dyn ExecutionPlan>],
        _: &TaskContext,
        _: &dyn PhysicalProtoConverterExtension,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        let refuse =
            |why: String| external(crate::Error::Invalid(format!("a task was refused: {why}")));
        if !inputs.is_empty() {
            return Err(refuse(format!(
                "a tally leaf has no inputs, and {} came",
                inputs.len()
            )));
        }
        if buf.len() > MAX_WIRE_BYTES {
            return Err(refuse(format!(
                "{} bytes, more than the {MAX_WIRE_BYTES} a task may take",
                buf.len()
            )));
        }
        let task: ShardTask =
            serde_json::from_slice(buf).map_err(|e| refuse(format!("not a tally task: {e}")))?;
        let query = task.check().map_err(external)?;
        Ok(Arc::new(TallyShardExec::new(task, query)))
    }

    fn try_encode(
        &self,
        node: Arc<dyn ExecutionPlan>,
        buf: &mut Vec<u8>,
        _: &dyn PhysicalProtoConverterExtension,
    ) -> DfResult<()> {
        let Some(leaf) = node.downcast_ref::<TallyShardExec>() else {
            return Err(DataFusionError::Internal(format!(
                "the tally codec carries tally's shard leaf only, not {}",
                node.name()
            )));
        };
        serde_json::to_writer(buf, &leaf.task).map_err(|e| DataFusionError::External(Box::new(e)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_task_from_the_network_is_checked() {
        // [SO29]: bounds-checked decoding, errors and not panics, and the
        // query checked again.
        let query = Query::parse("drop(followers, 5%, 1h)").unwrap();
        let task = ShardTask::new(&query, TimeRange::ALL, 4);
        assert_eq!(task.check().unwrap().to_string(), query.to_string());
        let bad = [
            ShardTask {
                format: 2,
                ..task.clone()
            },
            ShardTask {
                shards: vec![4],
                ..task.clone()
            },
            ShardTask {
                shards: vec![1, 1],
                ..task.clone()
            },
            ShardTask {
                shard_count: 3,
                ..task.clone()
            },
            ShardTask {
                query: "drop(followers, 5%)".to_string(),
                ..task.clone()
            },
        ];
        for task in bad {
            assert!(task.check().is_err(), "{task:?}");
        }
        let ctx = TaskContext::default();
        let converter = datafusion_proto::physical_plan::DefaultPhysicalProtoConverter {};
        let encoded = serde_json::to_vec(&task).unwrap();
        for cut in [0, 1, encoded.len() / 2, encoded.len() - 1] {
            let decoded = TallyCodec.try_decode(&encoded[..cut], &[], &ctx, &converter);
            assert!(decoded.is_err(), "a task cut at {cut} bytes decoded");
        }
        let decoded = TallyCodec
            .try_decode(&encoded, &[], &ctx, &converter)
            .unwrap();
        let mut again = Vec::new();
        TallyCodec
            .try_encode(decoded, &mut again, &converter)
            .unwrap();
        assert_eq!(again, encoded);
    }

    #[test]
    fn each_shard_answers_exactly_once() {
        let part = |shard: u32| {
            let dir = tempfile::tempdir().unwrap();
            let db = crate::Db::open(dir.path()).unwrap();
            let query = Query::parse("count(followers)").unwrap();
            let bytes = serde_json::to_vec(&query.run_shard_part(&db).unwrap()).unwrap();
            RecordBatch::try_new(
                parts_schema(),
                vec![
                    Arc::new(UInt32Array::from(vec![shard])),
                    Arc::new(BinaryArray::from_vec(vec![bytes.as_slice()])),
                ],
            )
            .unwrap()
        };
        assert_eq!(parts_of(&[part(1), part(0)], 2).unwrap().len(), 2);
        let twice = parts_of(&[part(0), part(0), part(1)], 2).unwrap_err();
        assert!(
            twice.to_string().contains("shard 0 answered twice"),
            "{twice}"
        );
        let missing = parts_of(&[part(1)], 2).unwrap_err();
        assert!(
            missing.to_string().contains("shard 0 did not answer"),
            "{missing}"
        );
        assert!(parts_of(&[part(2)], 2).is_err());
    }
}
