//! Reading a baseline: TOML text to a [`Baseline`], every error located by file, line and field.
//!
//! Four steps, each with its own error variant: syntax, schema version, structure (serde, into raw
//! types that keep the spans of the values), meaning ([`check`]). Metric keys are parsed with
//! [`Metric::parse`], so [`Metric::ALL`] is the only list of them: a table of per-metric values is
//! read by a visitor that knows its fixed fields and which metrics it holds.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::marker::PhantomData;
use std::ops::Range;
use std::path::Path;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, Visitor};
use serde::Deserialize;
use toml::Spanned;

use super::check::check;
use super::write::key;
use super::{stem, Baseline, BaselineError, CheckpointBaseline, Pooled, Recorded, ReferenceRuns, BASELINE_SCHEMA};
use crate::fingerprint::Fingerprint;
use crate::stats::Metric;

impl Baseline {
    /// Reads and validates a baseline file.
    ///
    /// # Errors
    /// [`BaselineError::NotFound`] if the file does not exist; [`BaselineError::Io`] if it cannot
    /// be read; otherwise as [`Baseline::parse`]. Each names the file, the 1-based line and the
    /// field.
    pub fn load(path: &Path) -> Result<Baseline, BaselineError> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(BaselineError::NotFound { path: path.to_owned() })
            }
            Err(source) => return Err(BaselineError::Io { path: path.to_owned(), action: "read", source }),
        };
        let b = Baseline::parse(&text, path)?;
        // A file is read as the baseline of the scenario it is named after: one naming another
        // scenario (copied, or edited by hand) would judge one scenario by another's numbers.
        let file_scenario = stem(path);
        if b.scenario != file_scenario {
            return Err(BaselineError::Invalid {
                path: path.to_owned(),
                line: crate::config::line_of_key(&text, "scenario").unwrap_or(0),
                field: "scenario".into(),
                message: format!(
                    "{:?} does not match the file name: {} holds the baseline of scenario {file_scenario:?}",
                    b.scenario,
                    path.display()
                ),
                scenario: file_scenario,
            });
        }
        Ok(b)
    }

    /// Parses and validates baseline text; `path` is only used in error messages.
    ///
    /// # Errors
    /// [`BaselineError::Syntax`] for invalid TOML; [`BaselineError::Schema`] for another schema
    /// version; [`BaselineError::Field`] for a missing, mistyped or unknown field;
    /// [`BaselineError::Invalid`] for a value that breaks the invariants in the module documentation.
    pub fn parse(text: &str, path: &Path) -> Result<Baseline, BaselineError> {
        // 1. Syntax, separately from structure, so that the two get different variants.
        if let Err(e) = text.parse::<toml::Table>() {
            let offset = e.span().map_or(0, |s| s.start);
            let (line, column) = line_col(text, offset);
            let field = field_at(text, offset, e.message());
            return Err(BaselineError::Syntax {
                path: path.to_owned(),
                line,
                column,
                field,
                message: e.message().to_owned(),
            });
        }
        // 2. The schema version first: a file of another version may have any structure, and "regenerate
        // it" is the useful message, not "missing field".
        #[derive(Deserialize)]
        struct Head {
            schema: Option<Spanned<toml::Value>>,
            scenario: Option<toml::Value>,
        }
        let head: Head = toml::from_str(text).map_err(|e| serde_error(text, path, &stem(path), &e))?;
        let scenario = match head.scenario {
            Some(toml::Value::String(s)) if !s.is_empty() => s,
            _ => stem(path),
        };
        if let Some(schema) = &head.schema {
            if let toml::Value::Integer(found) = schema.get_ref() {
                if *found != i64::from(BASELINE_SCHEMA) {
                    return Err(BaselineError::Schema {
                        path: path.to_owned(),
                        line: line_col(text, schema.span().start).0,
                        found: *found,
                        scenario,
                    });
                }
            }
        }
        // 3. Structure: every field present, of the right type, none unknown.
        let raw: RawBaseline = toml::from_str(text).map_err(|e| serde_error(text, path, &scenario, &e))?;
        // 4. Meaning.
        let (baseline, spans) = raw.into_baseline();
        check(&baseline).map_err(|p| {
            let offset = spans
                .get(&p.field)
                .map(|s| p.index.and_then(|i| s.elems.get(i)).unwrap_or(&s.whole).start)
                .or_else(|| key_offset(text, &p.field))
                .or_else(|| header_offset(text, &p.field))
                .unwrap_or(0);
            BaselineError::Invalid {
                path: path.to_owned(),
                line: line_col(text, offset).0,
                field: p.field,
                message: p.message,
                scenario: scenario.clone(),
            }
        })?;
        // A recorded baseline always has the frequency it was measured at; 0 or NaN in a file is
        // an edit, and would make every machine comparison meaningless.
        let hz = baseline.machine.tick_hz;
        if !super::check::TICK_HZ.contains(&hz) {
            return Err(BaselineError::Invalid {
                path: path.to_owned(),
                line: key_offset(text, "machine.tick_hz").map_or(0, |o| line_col(text, o).0),
                field: "machine.tick_hz".into(),
                message: format!(
                    "{} is not a tick frequency in [{:e}, {:e}] Hz",
                    crate::config::show_number(hz),
                    super::check::TICK_HZ.start(),
                    super::check::TICK_HZ.end()
                ),
                scenario,
            });
        }
        Ok(baseline)
    }
}

// ---------------------------------------------------------------------------------------------
// Raw serde types with spans, converted into the public types.

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBaseline {
    schema: Spanned<u32>,
    scenario: Spanned<String>,
    recorded: RawRecorded,
    machine: Fingerprint,
    #[serde(default)]
    reference: Option<RawReference>,
    checkpoints: BTreeMap<String, RawCheckpoint>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRecorded {
    commit: String,
    date: Spanned<String>,
    runs: Spanned<usize>,
    funcscope: String,
    args: Vec<String>,
    #[serde(default)]
    sessions: Option<Spanned<Vec<usize>>>,
}

/// A per-run array, with the span of the array and of each value.
type RawArray = Spanned<Vec<Spanned<f64>>>;

/// `[reference]`: `workload` plus one array per metric, all required.
struct RawReference {
    workload: String,
    arrays: BTreeMap<Metric, RawArray>,
}

/// `[checkpoints.<name>]`: the fixed fields plus one array per metric, all required.
struct RawCheckpoint {
    calls_per_run: Spanned<f64>,
    lost: u64,
    noise_cv: Spanned<RawNoise>,
    arrays: BTreeMap<Metric, RawArray>,
    pooled: RawPooled,
}

/// `noise_cv`: a value per metric. An absent one is not a serde error but a [`check`] problem, whose
/// message names the metric.
struct RawNoise(BTreeMap<Metric, Spanned<f64>>);

/// `[checkpoints.<name>.pooled]`: a value per metric of [`Metric::POOLED`], all required.
struct RawPooled(BTreeMap<Metric, Spanned<f64>>);

/// A table read by [`TableVisitor`]: its keys, and how its entries become `Self`.
trait RawTable: Sized {
    /// The fixed fields and the metrics the table may have.
    const KEYS: KeySeed;
    /// Serde's name for the table, for "invalid type: ..., expected ..." messages.
    const EXPECTING: &'static str;
    /// Reads every entry of `map`; missing fields are reported in file order, as a derived
    /// `Deserialize` does.
    fn read<'de, A: MapAccess<'de>>(map: A) -> Result<Self, A::Error>;
}

impl RawTable for RawReference {
    const KEYS: KeySeed = KeySeed { fields: &["workload"], metrics: &Metric::ALL };
    const EXPECTING: &'static str = "the [reference] table";

    fn read<'de, A: MapAccess<'de>>(mut map: A) -> Result<Self, A::Error> {
        let mut workload: Option<String> = None;
        let arrays = entries(&mut map, Self::KEYS, |_, map| {
            workload = Some(map.next_value()?);
            Ok(())
        })?;
        let workload = workload.ok_or_else(|| de::Error::missing_field("workload"))?;
        require(&arrays, &Metric::ALL)?;
        Ok(RawReference { workload, arrays })
    }
}

impl RawTable for RawCheckpoint {
    const KEYS: KeySeed = KeySeed { fields: &["calls_per_run", "lost", "noise_cv", "pooled"], metrics: &Metric::ALL };
    const EXPECTING: &'static str = "a checkpoint table";

    fn read<'de, A: MapAccess<'de>>(mut map: A) -> Result<Self, A::Error> {
        let mut calls_per_run: Option<Spanned<f64>> = None;
        let mut lost: Option<u64> = None;
        let mut noise_cv: Option<Spanned<RawNoise>> = None;
        let mut pooled: Option<RawPooled> = None;
        let arrays = entries(&mut map, Self::KEYS, |field, map| {
            match field {
                "calls_per_run" => calls_per_run = Some(map.next_value()?),
                "lost" => lost = Some(map.next_value()?),
                "noise_cv" => noise_cv = Some(map.next_value()?),
                _ => pooled = Some(map.next_value()?),
            }
            Ok(())
        })?;
        let calls_per_run = calls_per_run.ok_or_else(|| de::Error::missing_field("calls_per_run"))?;
        let lost = lost.ok_or_else(|| de::Error::missing_field("lost"))?;
        let noise_cv = noise_cv.ok_or_else(|| de::Error::missing_field("noise_cv"))?;
        require(&arrays, &Metric::ALL)?;
        let pooled = pooled.ok_or_else(|| de::Error::missing_field("pooled"))?;
        Ok(RawCheckpoint { calls_per_run, lost, noise_cv, arrays, pooled })
    }
}

impl RawTable for RawNoise {
    const KEYS: KeySeed = KeySeed { fields: &[], metrics: &Metric::ALL };
    const EXPECTING: &'static str = "a table of one value per metric";

    fn read<'de, A: MapAccess<'de>>(mut map: A) -> Result<Self, A::Error> {
        entries(&mut map, Self::KEYS, |_, _| Ok(())).map(RawNoise)
    }
}

impl RawTable for RawPooled {
    const KEYS: KeySeed = KeySeed { fields: &[], metrics: &Metric::POOLED };
    const EXPECTING: &'static str = "a table of one value per pooled metric";

    fn read<'de, A: MapAccess<'de>>(mut map: A) -> Result<Self, A::Error> {
        let values = entries(&mut map, Self::KEYS, |_, _| Ok(()))?;
        require(&values, &Metric::POOLED)?;
        Ok(RawPooled(values))
    }
}

/// Deserializes any [`RawTable`] from a TOML table.
struct TableVisitor<T>(PhantomData<T>);

impl<'de, T: RawTable> Visitor<'de> for TableVisitor<T> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(T::EXPECTING)
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
        T::read(map)
    }
}

/// `impl Deserialize` through [`TableVisitor`] for each raw table type.
macro_rules! deserialize_table {
    ($($t:ty),*) => {$(
        impl<'de> Deserialize<'de> for $t {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                d.deserialize_map(TableVisitor::<Self>(PhantomData))
            }
        }
    )*};
}
deserialize_table!(RawReference, RawCheckpoint, RawNoise, RawPooled);

/// A key of a table: one of its fixed fields, or a metric.
enum Key {
    Field(&'static str),
    Metric(Metric),
}

/// The keys a table accepts: fixed `fields` and the names of `metrics` ([`Metric::parse`]). An
/// unknown key fails here, inside the key's deserializer, so that the error carries the key's span
/// (and so its line).
#[derive(Clone, Copy)]
struct KeySeed {
    fields: &'static [&'static str],
    metrics: &'static [Metric],
}

impl<'de> DeserializeSeed<'de> for KeySeed {
    type Value = Key;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Key, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeySeed {
    type Value = Key;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a field name")
    }

    fn visit_str<E: de::Error>(self, k: &str) -> Result<Key, E> {
        if let Some(field) = self.fields.iter().find(|f| **f == k) {
            return Ok(Key::Field(field));
        }
        match Metric::parse(k) {
            Some(m) if self.metrics.contains(&m) => Ok(Key::Metric(m)),
            // Worded as serde's own `unknown_field`, which needs a `'static` list.
            _ => {
                let names: Vec<String> = self
                    .fields
                    .iter()
                    .copied()
                    .chain(self.metrics.iter().map(|m| m.as_str()))
                    .map(|n| format!("`{n}`"))
                    .collect();
                Err(E::custom(format_args!("unknown field `{k}`, expected one of {}", names.join(", "))))
            }
        }
    }
}

/// Reads the entries of a table: metric-keyed values are returned, fixed fields handed to `field`
/// (which must read the value).
fn entries<'de, A, V>(
    map: &mut A,
    keys: KeySeed,
    mut field: impl FnMut(&'static str, &mut A) -> Result<(), A::Error>,
) -> Result<BTreeMap<Metric, V>, A::Error>
where
    A: MapAccess<'de>,
    V: Deserialize<'de>,
{
    let mut values = BTreeMap::new();
    while let Some(key) = map.next_key_seed(keys)? {
        match key {
            Key::Field(name) => field(name, map)?,
            Key::Metric(m) => {
                values.insert(m, map.next_value()?);
            }
        }
    }
    Ok(values)
}

/// "missing field `p99.9`" for the first of `metrics` (in order) that `values` lacks.
fn require<V, E: de::Error>(values: &BTreeMap<Metric, V>, metrics: &[Metric]) -> Result<(), E> {
    match metrics.iter().find(|m| !values.contains_key(m)) {
        Some(m) => Err(E::missing_field(m.as_str())),
        None => Ok(()),
    }
}

/// Byte ranges of a field's value and, for arrays, of each element.
struct SpanInfo {
    whole: Range<usize>,
    elems: Vec<Range<usize>>,
}

/// Spans by field path (as [`check`] writes it), collected while the raw types are unwrapped.
#[derive(Default)]
struct Spans(HashMap<String, SpanInfo>);

impl Spans {
    /// `value`, its span recorded under `field`.
    fn value<T>(&mut self, field: String, value: Spanned<T>) -> T {
        self.0.insert(field, SpanInfo { whole: value.span(), elems: Vec::new() });
        value.into_inner()
    }

    /// The values of `array`, its spans and its elements' recorded under `field`.
    fn array(&mut self, field: String, array: RawArray) -> Vec<f64> {
        let whole = array.span();
        let values = array.into_inner();
        self.0.insert(field, SpanInfo { whole, elems: values.iter().map(Spanned::span).collect() });
        values.into_iter().map(Spanned::into_inner).collect()
    }

    /// One array per metric, each recorded under `field(metric)`.
    fn arrays(
        &mut self,
        arrays: BTreeMap<Metric, RawArray>,
        field: impl Fn(Metric) -> String,
    ) -> BTreeMap<Metric, Vec<f64>> {
        arrays.into_iter().map(|(m, a)| (m, self.array(field(m), a))).collect()
    }

    /// One value per metric, each recorded under `field(metric)`.
    fn values(
        &mut self,
        values: BTreeMap<Metric, Spanned<f64>>,
        field: impl Fn(Metric) -> String,
    ) -> BTreeMap<Metric, f64> {
        values.into_iter().map(|(m, v)| (m, self.value(field(m), v))).collect()
    }
}

impl RawBaseline {
    /// The public baseline, and the spans of its fields keyed by the field paths [`check`] uses.
    fn into_baseline(self) -> (Baseline, HashMap<String, SpanInfo>) {
        let mut spans = Spans::default();
        let schema = spans.value("schema".into(), self.schema);
        let scenario = spans.value("scenario".into(), self.scenario);
        let r = self.recorded;
        let runs = spans.value("recorded.runs".into(), r.runs);
        let recorded = Recorded {
            commit: r.commit,
            date: spans.value("recorded.date".into(), r.date),
            runs,
            funcscope: r.funcscope,
            args: r.args,
            // Absent: recorded in one session.
            sessions: r.sessions.map_or_else(|| vec![runs], |s| spans.value("recorded.sessions".into(), s)),
        };
        let reference = self.reference.map(|r| ReferenceRuns {
            workload: r.workload,
            runs: spans.arrays(r.arrays, |m| format!("reference.{}", key(m.as_str()))),
        });
        let mut checkpoints = BTreeMap::new();
        for (name, raw) in self.checkpoints {
            let field = |k: &str| format!("checkpoints.{}.{}", key(&name), key(k));
            let noise = spans.value(field("noise_cv"), raw.noise_cv).0;
            let noise_cv = spans.values(noise, |m| format!("{}.{}", field("noise_cv"), key(m.as_str())));
            let pooled = spans.values(raw.pooled.0, |m| format!("{}.{}", field("pooled"), key(m.as_str())));
            let cp = CheckpointBaseline {
                calls_per_run: spans.value(field("calls_per_run"), raw.calls_per_run),
                lost: raw.lost,
                noise_cv,
                runs: spans.arrays(raw.arrays, |m| field(m.as_str())),
                // RawPooled requires every pooled metric; a NaN could not pass `check` anyway.
                pooled: Pooled::from_fn(|m| pooled.get(&m).copied().unwrap_or(f64::NAN)),
            };
            checkpoints.insert(name, cp);
        }
        let baseline = Baseline { schema, scenario, recorded, machine: self.machine, checkpoints, reference };
        (baseline, spans.0)
    }
}

/// A deserializer error (missing, mistyped or unknown field) as [`BaselineError::Field`].
fn serde_error(text: &str, path: &Path, scenario: &str, e: &toml::de::Error) -> BaselineError {
    let offset = e.span().map_or(0, |s| s.start);
    BaselineError::Field {
        path: path.to_owned(),
        line: line_col(text, offset).0,
        field: field_at(text, offset, e.message()).unwrap_or_else(|| "(top level)".into()),
        message: e.message().to_owned(),
        scenario: scenario.to_owned(),
    }
}

/// 1-based line and column (in characters) of byte `offset` in `text`.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before[line_start..].chars().count() + 1;
    (line, column)
}

/// The dotted field path at byte `offset`: the enclosing `[table]` header plus the key on that line,
/// or, for "missing field `x`" errors (whose span is the table header, or empty for the top
/// level), the table plus `x`. `None` if nothing can be named.
fn field_at(text: &str, offset: usize, message: &str) -> Option<String> {
    let offset = offset.min(text.len());
    let line_start = text[..offset].rfind('\n').map_or(0, |i| i + 1);
    let line_end = text[offset..].find('\n').map_or(text.len(), |i| offset + i);
    let line = text[line_start..line_end].trim();
    let missing = message.strip_prefix("missing field `").and_then(|m| m.split_once('`')).map(|(name, _)| key(name));
    let join = |table: &str, k: &str| if table.is_empty() { k.to_owned() } else { format!("{table}.{k}") };
    if line.starts_with('[') {
        let table = header_name(line);
        return Some(match missing {
            Some(m) => join(&table, &m),
            None => table,
        });
    }
    // The nearest header above this line, if any.
    let table = text[..line_start].lines().rev().map(str::trim).find(|l| l.starts_with('[')).map(header_name);
    let table = table.unwrap_or_default();
    if let Some(m) = missing {
        return Some(join(&table, &m));
    }
    let k = line.split_once('=').map(|(k, _)| k.trim()).filter(|k| !k.is_empty() && !k.starts_with('#'));
    match k {
        Some(k) => Some(join(&table, k)),
        None if !table.is_empty() => Some(table),
        None => None,
    }
}

/// `checkpoints.a` from `[checkpoints.a]` (or `[[...]]`), comments stripped.
fn header_name(line: &str) -> String {
    let inner = line.trim_start_matches('[');
    let end = inner.rfind(']').unwrap_or(inner.len());
    inner[..end].trim_end_matches(']').trim().to_owned()
}

/// Byte offset of the `[table]` header that is the longest prefix of `field` (for problems that have
/// no span of their own, like an absent `noise_cv` entry).
/// Byte offset of the line assigning the last key of `field` under its table header (e.g.
/// `tick_hz = ...` under `[machine]` for `machine.tick_hz`), for fields without a span.
fn key_offset(text: &str, field: &str) -> Option<usize> {
    let (_, last) = field.rsplit_once('.')?;
    let start = header_offset(text, field)?;
    let mut offset = start;
    for (i, line) in text[start..].split_inclusive('\n').enumerate() {
        let t = line.trim_start();
        if i > 0 && t.starts_with('[') {
            return None;
        }
        if t.strip_prefix(last).is_some_and(|r| r.trim_start().starts_with('=')) {
            return Some(offset);
        }
        offset += line.len();
    }
    None
}

fn header_offset(text: &str, field: &str) -> Option<usize> {
    let mut best: Option<(usize, usize)> = None; // (prefix length, offset)
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        let t = line.trim();
        if t.starts_with('[') {
            let name = header_name(t);
            let is_prefix = field == name || field.starts_with(&format!("{name}."));
            if is_prefix && best.is_none_or(|(len, _)| name.len() > len) {
                best = Some((name.len(), offset));
            }
        }
        offset += line.len();
    }
    best.map(|(_, o)| o)
}
