//! `factorydash simulate`: simulated machine tools served as MTConnect agents, so that a
//! dashboard can be tried and demonstrated without a shop floor.
//!
//! Each agent holds machines built from the NIST Smart Manufacturing Systems Test Bed's real
//! device models (a GF Agie Mikron HPM600U, a Mazak Integrex 100-IV and a Hurco VMX, the
//! probe of `recordings/nist-3-machines-shdr-2016`), renamed per instance (`Mazak-0007`).
//! The machines run programs in cycles along a tool path (a rectangular pocket, cut in
//! passes, one operation per tool), with feedrates, loads, spindle speed and temperatures
//! that follow it, and now and then raise a Warning or a Fault that clears later, or drop
//! their availability. All of it is deterministic from the seed: a tick is numbered, each
//! machine has its own seeded RNG, and sequences are assigned in tick, machine and data item
//! order.
//!
//! One clock task per agent makes a tick's observations in one batch into the agent's ring
//! buffer (`--buffer` observations, 24 bytes each: tick, data item, compact value); they
//! become [`Observation`]s (strings) only when a document is written. The HTTP side is the
//! replay agent's ([`crate::agent`]), over [`SimSource`].

use std::borrow::Cow;
use std::collections::VecDeque;
use std::io::Read;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use chrono::{DateTime, Utc};
use factorydash_core::{Category, ConditionLevel, ConditionState, Observation, Value};
use factorydash_mtconnect::devices::{Component, DataItem};
use factorydash_mtconnect::{Devices, Header};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use warp::Filter;

use crate::agent::{self, Agent, Source};

/// The device models: GFAgie01, Mazak01 and Hurco01 of the NIST test bed (see the
/// recording's README for their origin).
const MODELS: &[u8] = include_bytes!("../demo/nist-3-machines-shdr-2016/probe.xml.gz");

/// The namespace of the NIST extension types (`x:MOTION`, `x:UNIT`, …).
const NIST_NAMESPACE: &str = "urn:nist.gov:NistStreams:1.3";

/// What `factorydash simulate` runs.
#[derive(Debug, Clone)]
pub struct SimSettings {
    /// Agents served, at `/agent-01/…`, `/agent-02/…`.
    pub agents: u32,
    /// Machines (MTConnect devices) per agent.
    pub machines_per_agent: u32,
    /// Ticks per second (Hz): how often each Sample data item is computed, and published
    /// when its value changed.
    pub rate_hz: f64,
    /// The seed of every machine's RNG.
    pub seed: u64,
    /// Stop after this long (`None`: until Ctrl-C or SIGTERM).
    pub duration: Option<Duration>,
    /// Observations each agent holds (its ring buffer, the `bufferSize`).
    pub buffer: usize,
    /// Warnings and Faults per machine per hour (availability drops are a quarter of that,
    /// at most 6 an hour).
    pub fault_rate: f64,
    /// The mean time of a program cycle (one part), in seconds of simulated time.
    pub cycle_time: Duration,
    /// Whether the agents take fault switches (`agent::fault_switches`).
    pub faults: bool,
}

/// The path of agent `index` (0-based): `agent-01` … `agent-99`, `agent-100`, …
pub fn agent_name(index: u32) -> String {
    format!("agent-{:02}", index + 1)
}

/// Runs the simulator until `--duration` or a stop signal, serving on `listen`; prints the
/// address first (`factorydash: … http://ADDR/`), then a summary at exit.
///
/// # Errors
/// When `listen` cannot be bound.
pub async fn run(settings: SimSettings, listen: SocketAddr) -> anyhow::Result<()> {
    let models = models()?;
    // Tick k is made at `origin + k / rate` and stamped `started + k / rate`: the two
    // clocks read together, so an observation's timestamp is the wall-clock time at which
    // it was due (the time it was made, unless the simulator runs late).
    let started = Utc::now();
    let origin = tokio::time::Instant::now();
    let mut agents = Vec::new();
    for a in 0..settings.agents {
        let name = agent_name(a);
        let source = Arc::new(SimSource::new(&settings, &models, a, started));
        let agent = Agent::new(source.clone(), name.clone());
        agent.allow_faults(settings.faults);
        agents.push((name, source, agent));
    }
    let listener = TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    let address = listener.local_addr()?;

    let stop = CancellationToken::new();
    let mut clocks = Vec::new();
    for (_, source, _) in &agents {
        clocks.push(tokio::spawn(clock(
            source.clone(),
            origin,
            settings.rate_hz,
            stop.clone(),
        )));
    }

    let by_name: Arc<std::collections::HashMap<String, Arc<Agent>>> = Arc::new(
        agents
            .iter()
            .map(|(n, _, a)| (n.clone(), a.clone()))
            .collect(),
    );
    let lookup = warp::path::param::<String>().and_then(move |name: String| {
        let found = by_name.get(&name).cloned();
        async move { found.ok_or_else(warp::reject::not_found) }
    });
    let named = agent::routes_with(lookup).boxed();
    let routes = if agents.len() == 1 {
        // One agent stands in for a plain agent at the root too.
        named.or(agent::routes(agents[0].2.clone())).unify().boxed()
    } else {
        named
            .or(warp::any().map(agent::unknown_uri))
            .unify()
            .boxed()
    };

    println!(
        "factorydash: simulating {} agents of {} machines at http://{address}/",
        settings.agents, settings.machines_per_agent
    );
    for (name, source, _) in &agents {
        tracing::info!(
            machines = source.devices.devices.len(),
            data_items = source.items.len(),
            "{name}: http://{address}/{name}"
        );
    }
    if agents.len() == 1 {
        tracing::info!("{}: also at http://{address}/", agents[0].0);
    }
    let done = stop.clone();
    let server = tokio::spawn(
        warp::serve(routes)
            .incoming(listener)
            .graceful(async move { done.cancelled().await })
            .run(),
    );
    match settings.duration {
        Some(d) => {
            tokio::select! {
                _ = tokio::time::sleep(d) => tracing::info!("--duration reached: stopping"),
                _ = crate::stop_signal() => {}
            }
        }
        None => crate::stop_signal().await,
    }
    stop.cancel();
    for c in clocks {
        let _ = c.await;
    }
    let _ = tokio::time::timeout(Duration::from_secs(5), server).await;
    let (mut generated, mut served) = (0, 0);
    println!("factorydash: summary (observations)");
    for (name, source, _) in &agents {
        let g = source.generated.load(Ordering::SeqCst);
        let s = source.served.load(Ordering::SeqCst);
        println!("  {name}: generated {g}, served {s}");
        generated += g;
        served += s;
    }
    println!("  total: generated {generated}, served {served}");
    Ok(())
}

/// The device models, parsed.
fn models() -> anyhow::Result<Vec<Component>> {
    let mut xml = Vec::new();
    flate2::read::GzDecoder::new(MODELS)
        .read_to_end(&mut xml)
        .context("the bundled device models")?;
    let parsed = factorydash_mtconnect::parse_devices(&xml).context("the bundled device models")?;
    Ok(parsed.value.devices)
}

/// One agent's clock: a tick every `1 / rate_hz` seconds from `origin` (tick 0, the
/// agent's `started`), late ticks made at once (their timestamps are their own), until
/// `stop`.
async fn clock(
    source: Arc<SimSource>,
    origin: tokio::time::Instant,
    rate_hz: f64,
    stop: CancellationToken,
) {
    let mut every = tokio::time::interval_at(origin, Duration::from_secs_f64(1.0 / rate_hz));
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut batch = Vec::new();
    loop {
        tokio::select! {
            _ = every.tick() => {}
            _ = stop.cancelled() => return,
        }
        source.tick(&mut batch);
    }
}

/// A value as the ring buffer holds it: no strings.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Val {
    /// `UNAVAILABLE`.
    Unavailable,
    /// A number, written with the data item's decimals.
    Num(f32),
    /// A whole number.
    Int(i32),
    /// A controlled vocabulary word.
    Word(Word),
    /// A program name ([`PROGRAMS`]).
    Program(u8),
    /// A program comment ([`PROGRAMS`]).
    Comment(u8),
    /// A subprogram name, by operation.
    Sub(u8),
    /// The CuttingTool asset of a tool number.
    ToolAsset(i32),
    /// A Condition: the level, and the alarm ([`ALARMS`]) when Warning or Fault.
    Cond(ConditionLevel, u8),
    /// A 3D position (`PATH_POSITION`), millimetres.
    Vec3([f32; 3]),
}

/// The words of the MTConnect controlled vocabularies the simulator uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Word {
    Available,
    Armed,
    Triggered,
    Active,
    Ready,
    Stopped,
    Interrupted,
    Automatic,
    Manual,
    On,
    Spindle,
    Index,
    Rapid,
    Feed,
    SuffixA,
}

impl Word {
    fn as_str(self) -> &'static str {
        match self {
            Word::Available => "AVAILABLE",
            Word::Armed => "ARMED",
            Word::Triggered => "TRIGGERED",
            Word::Active => "ACTIVE",
            Word::Ready => "READY",
            Word::Stopped => "STOPPED",
            Word::Interrupted => "INTERRUPTED",
            Word::Automatic => "AUTOMATIC",
            Word::Manual => "MANUAL",
            Word::On => "ON",
            Word::Spindle => "SPINDLE",
            Word::Index => "INDEX",
            Word::Rapid => "RAPID",
            Word::Feed => "FEED",
            Word::SuffixA => "A",
        }
    }
}

/// Program names and comments.
const PROGRAMS: &[(&str, &str)] = &[
    ("O1001", "BRACKET A12 OP10"),
    ("O1002", "BRACKET A12 OP20"),
    ("O2040", "PUMP HOUSING 3 ROUGH"),
    ("O2041", "PUMP HOUSING 3 FINISH"),
    ("O3100", "FLANGE DN80"),
    ("O4711", "GEARBOX COVER"),
    ("O5005", "FIXTURE PLATE"),
    ("O6120", "MANIFOLD BLOCK"),
];

/// Alarms: the condition type they belong to, the native code and the message.
const ALARMS: &[(&str, &str, &str)] = &[
    ("", "9000", "Unspecified machine alarm"),
    ("SYSTEM", "2011", "Absolute encoder battery low"),
    ("SYSTEM", "EX1082", "Door interlock opened during cycle"),
    (
        "ACTUATOR",
        "SV0410",
        "Excessive position error while stopped",
    ),
    ("COMMUNICATIONS", "COM301", "Fieldbus node timeout"),
    ("LOGIC_PROGRAM", "PLC1024", "Ladder watchdog"),
    ("MOTION_PROGRAM", "PS0010", "Improper G-code"),
    ("MOTION_PROGRAM", "PS0011", "Feed zero (command)"),
    ("TEMPERATURE", "OH0700", "Overheat"),
    ("LOAD", "SP9031", "Spindle overload"),
    ("POSITION", "OT0500", "Overtravel +"),
    ("ANGLE", "OT0506", "Overtravel - rotary"),
    ("PRESSURE", "HYD202", "Pressure low"),
    ("LEVEL", "CLT110", "Coolant level low"),
];

/// What drives a data item.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Role {
    Availability,
    EStop,
    Execution,
    Mode,
    Program,
    SubProgram,
    Comment,
    Line,
    PartCount,
    Tool,
    ToolAsset,
    Unit,
    SequenceNumber,
    Motion,
    /// X, Y or Z position (0, 1, 2).
    Position(usize),
    /// A rotary axis angle (0: tilt, 1: rotation); spindles' angles stay put.
    Angle(usize),
    AxisFeed(usize),
    RotaryVelocity(usize),
    PathFeed,
    PathPosition,
    AxisLoad(usize),
    SpindleLoad,
    SpindleSpeed,
    /// A spindle that this simulation does not run (a second or third turret).
    IdleSpindle,
    SpindleTemperature,
    /// A temperature that drifts slowly around a base (°C).
    Temperature(f32),
    /// Seconds in AUTOMATIC and ACTIVE.
    AutoTime,
    /// Seconds cutting.
    CutTime,
    /// Seconds available.
    TotalTime,
    /// A condition that can raise an alarm: its alarms in [`ALARMS`] (first, how many).
    Condition(u8, u8),
    Const(Val),
}

/// A data item's identity as observations carry it, and how its values are written.
#[derive(Debug)]
struct ItemMeta {
    device: String,
    component_id: String,
    data_item_id: String,
    name: Option<String>,
    category: Category,
    /// The element name (`Position`), or the `type` for a Condition.
    kind: String,
    sub_type: Option<String>,
    /// Decimals of a [`Val::Num`].
    decimals: usize,
}

/// One observation in the ring buffer.
#[derive(Debug, Clone, Copy)]
struct Rec {
    tick: u32,
    item: u32,
    val: Val,
}

/// The held observations of an agent.
#[derive(Debug, Default)]
struct Ring {
    recs: VecDeque<Rec>,
    /// The sequence of `recs[0]`.
    first: u64,
    /// The latest observation of each data item: sequence and record.
    latest: Vec<Option<(u64, Rec)>>,
}

impl Ring {
    fn next(&self) -> u64 {
        self.first + self.recs.len() as u64
    }
}

/// A simulated agent: its machines, its ring buffer, its counters.
pub struct SimSource {
    instance_id: u64,
    devices: Devices,
    items: Vec<ItemMeta>,
    machines: Mutex<Vec<Machine>>,
    ring: Mutex<Ring>,
    capacity: usize,
    /// When tick 0 happened (UTC).
    started: DateTime<Utc>,
    /// Seconds per tick.
    period: f64,
    /// The next tick to make.
    next_tick: AtomicU64,
    /// Observations made so far.
    pub generated: AtomicU64,
    /// Observations sent in `/sample` answers (polled and streamed).
    pub served: AtomicU64,
}

impl SimSource {
    /// Agent `index` of `settings`, whose machines are built from `models` and numbered
    /// across agents (`Mazak-0007`), tick 0 at `started`.
    pub fn new(
        settings: &SimSettings,
        models: &[Component],
        index: u32,
        started: DateTime<Utc>,
    ) -> Self {
        let total = u64::from(settings.agents) * u64::from(settings.machines_per_agent);
        let width = total.to_string().len().max(4);
        let mut devices = Vec::new();
        let mut items = Vec::new();
        let mut machines = Vec::new();
        for m in 0..settings.machines_per_agent {
            let global = u64::from(index) * u64::from(settings.machines_per_agent) + u64::from(m);
            let model = &models[global as usize % models.len()];
            let base = model
                .name
                .as_deref()
                .unwrap_or("Machine")
                .trim_end_matches(|c: char| c.is_ascii_digit());
            let device_name = format!("{base}-{:0width$}", global + 1);
            let device = renamed(model, &device_name);
            let first_item = items.len();
            let roles = describe(&device, &device_name, &mut items);
            let rng = StdRng::seed_from_u64(splitmix(settings.seed ^ splitmix(global)));
            machines.push(Machine::new(
                rng,
                first_item,
                roles,
                settings,
                device.uuid.clone().unwrap_or_default(),
                global % 3 == 0,
            ));
            devices.push(device);
        }
        let instance_id = started.timestamp() as u64 * 1000 + u64::from(index);
        let ring = Ring {
            recs: VecDeque::new(),
            first: 1,
            latest: vec![None; items.len()],
        };
        SimSource {
            instance_id,
            devices: Devices {
                header: Header::new(instance_id, "factorydash-simulate", "1.3")
                    .with_buffer_size(settings.buffer as u64),
                devices,
            },
            items,
            machines: Mutex::new(machines),
            ring: Mutex::new(ring),
            capacity: settings.buffer,
            started,
            period: 1.0 / settings.rate_hz,
            next_tick: AtomicU64::new(0),
            generated: AtomicU64::new(0),
            served: AtomicU64::new(0),
        }
    }

    /// Makes the next tick's observations (`batch` is scratch space, reused) and puts them
    /// in the ring buffer, the oldest falling out.
    fn tick(&self, batch: &mut Vec<(u32, Val)>) {
        let tick = self.next_tick.fetch_add(1, Ordering::SeqCst);
        batch.clear();
        {
            let mut machines = self.machines.lock().unwrap_or_else(|p| p.into_inner());
            for m in machines.iter_mut() {
                m.step(tick, self.period, batch);
            }
        }
        let mut ring = self.ring.lock().unwrap_or_else(|p| p.into_inner());
        for &(item, val) in batch.iter() {
            if ring.recs.len() == self.capacity {
                ring.recs.pop_front();
                ring.first += 1;
            }
            let rec = Rec {
                tick: tick as u32,
                item,
                val,
            };
            let seq = ring.next();
            ring.recs.push_back(rec);
            ring.latest[item as usize] = Some((seq, rec));
        }
        drop(ring);
        self.generated
            .fetch_add(batch.len() as u64, Ordering::Relaxed);
    }

    /// The observation of `rec`, sequence `sequence`.
    fn observation(&self, sequence: u64, rec: &Rec) -> Observation {
        let meta = &self.items[rec.item as usize];
        let timestamp = self.started
            + chrono::Duration::microseconds((f64::from(rec.tick) * self.period * 1e6) as i64);
        let mut condition = None;
        let value = match rec.val {
            Val::Unavailable => Value::Unavailable,
            Val::Num(n) => Value::Text(format!("{:.*}", meta.decimals, n)),
            Val::Int(n) => Value::Text(n.to_string()),
            Val::Word(w) => Value::Text(w.as_str().to_owned()),
            Val::Program(p) => Value::Text(PROGRAMS[p as usize].0.to_owned()),
            Val::Comment(p) => Value::Text(PROGRAMS[p as usize].1.to_owned()),
            Val::Sub(op) => Value::Text(format!("O90{:02}", op + 1)),
            Val::ToolAsset(t) => Value::Text(format!("{}.T{t}", meta.device)),
            Val::Vec3([x, y, z]) => Value::Text(format!("{x:.3} {y:.3} {z:.3}")),
            Val::Cond(level, alarm) => {
                let active = level.is_active();
                let (_, code, text) = ALARMS[alarm as usize];
                condition = Some(ConditionState {
                    level,
                    native_code: active.then(|| code.to_owned()),
                    native_severity: active.then(|| {
                        if level == ConditionLevel::Fault {
                            "2"
                        } else {
                            "1"
                        }
                        .to_owned()
                    }),
                    qualifier: None,
                });
                if active {
                    Value::Text(text.to_owned())
                } else {
                    Value::Unavailable
                }
            }
        };
        Observation {
            sequence,
            timestamp,
            device: meta.device.clone(),
            component_id: meta.component_id.clone(),
            data_item_id: meta.data_item_id.clone(),
            name: meta.name.clone(),
            category: meta.category,
            kind: meta.kind.clone(),
            sub_type: meta.sub_type.clone(),
            value,
            condition,
        }
    }
}

impl Source for SimSource {
    fn instance_id(&self) -> u64 {
        self.instance_id
    }

    fn sender(&self) -> &str {
        "factorydash-simulate"
    }

    fn version(&self) -> &str {
        "1.3"
    }

    fn devices(&self) -> &Devices {
        &self.devices
    }

    fn probe(&self) -> String {
        let mut devices = self.devices.clone();
        devices.header = devices.header.with_creation_time(Utc::now());
        factorydash_mtconnect::write_devices(&devices, "1.3")
    }

    fn extension_namespaces(&self) -> Vec<(String, String)> {
        vec![("x".into(), NIST_NAMESPACE.into())]
    }

    fn buffer_size(&self) -> u64 {
        self.capacity as u64
    }

    fn sequences(&self, floor: u64) -> (u64, u64) {
        let ring = self.ring.lock().unwrap_or_else(|p| p.into_inner());
        let next = ring.next();
        (ring.first.max(floor).min(next), next - 1)
    }

    fn page(&self, from: u64, count: usize) -> Cow<'_, [Observation]> {
        let ring = self.ring.lock().unwrap_or_else(|p| p.into_inner());
        let start = from.max(ring.first);
        let skip = (start - ring.first) as usize;
        let recs: Vec<Rec> = ring.recs.iter().skip(skip).take(count).copied().collect();
        drop(ring);
        Cow::Owned(
            recs.iter()
                .enumerate()
                .map(|(i, r)| self.observation(start + i as u64, r))
                .collect(),
        )
    }

    fn latest(&self, floor: u64) -> Vec<Observation> {
        let ring = self.ring.lock().unwrap_or_else(|p| p.into_inner());
        let mut latest: Vec<(u64, Rec)> = ring
            .latest
            .iter()
            .flatten()
            .filter(|(s, _)| *s >= floor)
            .copied()
            .collect();
        drop(ring);
        latest.sort_by_key(|(s, _)| *s);
        latest
            .iter()
            .map(|(s, r)| self.observation(*s, r))
            .collect()
    }

    fn assets(&self) -> Option<String> {
        let machines = self.machines.lock().unwrap_or_else(|p| p.into_inner());
        let now = factorydash_mtconnect::time::format_timestamp(Utc::now());
        let tools: Vec<(&Machine, &ToolUse)> = machines
            .iter()
            .flat_map(|m| m.tools.iter().map(move |t| (m, t)))
            .collect();
        let mut out = String::with_capacity(512 + tools.len() * 600);
        out.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<MTConnectAssets xmlns:m=\"urn:mtconnect.org:MTConnectAssets:1.3\" xmlns=\"urn:mtconnect.org:MTConnectAssets:1.3\" xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" xsi:schemaLocation=\"urn:mtconnect.org:MTConnectAssets:1.3 http://schemas.mtconnect.org/schemas/MTConnectAssets_1.3.xsd\">\n");
        out.push_str(&format!(
            "  <Header creationTime=\"{now}\" sender=\"factorydash-simulate\" instanceId=\"{}\" version=\"1.3\" assetBufferSize=\"{}\" assetCount=\"{}\"/>\n  <Assets>\n",
            self.instance_id,
            tools.len().max(1024),
            tools.len()
        ));
        for (m, t) in tools {
            let device = &self.items[m.first_item].device;
            out.push_str(&format!(
                "    <CuttingTool serialNumber=\"{serial}\" toolId=\"T{tool}\" timestamp=\"{now}\" deviceUuid=\"{uuid}\" assetId=\"{device}.T{tool}\">\n      <Description>{desc}</Description>\n      <CuttingToolLifeCycle>\n        <CutterStatus><Status>{status}</Status></CutterStatus>\n        <ToolLife type=\"PART_COUNT\" countDirection=\"UP\" initial=\"0\" limit=\"{limit}\" warning=\"{warning}\">{parts}</ToolLife>\n        <ToolLife type=\"MINUTES\" countDirection=\"UP\" initial=\"0\" limit=\"{minutes_limit}\">{minutes:.1}</ToolLife>\n        <ProgramToolNumber>{tool}</ProgramToolNumber>\n        <ProgramSpindleSpeed>{rpm}</ProgramSpindleSpeed>\n        <Measurements>\n          <CuttingDiameterMax code=\"DC\" nominal=\"{dia:.1}\">{dia:.3}</CuttingDiameterMax>\n        </Measurements>\n        <CuttingItems count=\"{inserts}\">\n          <CuttingItem indices=\"1-{inserts}\">\n            <ItemLife type=\"MINUTES\" countDirection=\"UP\" initial=\"0\" limit=\"{minutes_limit}\" warning=\"{minutes_warning}\">{minutes:.1}</ItemLife>\n          </CuttingItem>\n        </CuttingItems>\n      </CuttingToolLifeCycle>\n    </CuttingTool>\n",
                serial = 1000 + t.tool,
                tool = t.tool,
                uuid = m.uuid,
                desc = if t.diameter >= 16.0 { "Shell mill" } else { "Solid carbide end mill" },
                status = if t.parts == 0 { "NEW" } else if t.parts >= t.limit { "EXPIRED" } else { "USED" },
                limit = t.limit,
                warning = t.limit / 10 * 9,
                parts = t.parts,
                minutes_limit = t.limit / 4,
                // The edges of its inserts (MTConnect Part 4, CuttingItem), worn with it.
                inserts = if t.diameter >= 16.0 { 4 } else { 2 },
                minutes_warning = t.limit / 40 * 9,
                minutes = t.seconds / 60.0,
                rpm = t.rpm,
                dia = t.diameter,
            ));
        }
        out.push_str("  </Assets>\n</MTConnectAssets>\n");
        Some(out)
    }

    fn served(&self, observations: usize) {
        self.served
            .fetch_add(observations as u64, Ordering::Relaxed);
    }
}

/// SplitMix64 (Steele, Lea, Flood, "Fast splittable pseudorandom number generators",
/// OOPSLA 2014): spreads seeds so that neighbouring machines get unrelated RNGs.
fn splitmix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// `model` renamed `name`: ids that start with the model's id start with `name` instead,
/// others get `name-` in front, so that every id stays unique in the agent.
fn renamed(model: &Component, name: &str) -> Component {
    let old = model.id.clone();
    let rename = |id: &str| match id.strip_prefix(old.as_str()) {
        Some(rest) => format!("{name}{rest}"),
        None => format!("{name}-{id}"),
    };
    fn go(c: &mut Component, rename: &dyn Fn(&str) -> String) {
        c.id = rename(&c.id);
        for comp in &mut c.compositions {
            comp.id = rename(&comp.id);
        }
        for d in &mut c.data_items {
            d.id = rename(&d.id);
            if let Some(cid) = &mut d.composition_id {
                *cid = rename(cid);
            }
        }
        for child in &mut c.components {
            go(child, rename);
        }
    }
    let mut device = model.clone();
    go(&mut device, &rename);
    device.name = Some(name.to_owned());
    device.uuid = Some(format!("factorydash-sim-{}", name.to_ascii_lowercase()));
    device
}

/// Appends the metadata of every data item of `device` to `items` and returns the role of
/// each (index into `items`, role).
fn describe(device: &Component, name: &str, items: &mut Vec<ItemMeta>) -> Vec<(u32, Role)> {
    let mut roles = Vec::new();
    let mut spindle_seen = false;
    for (_, c) in device.walk() {
        let axis = c.name.as_deref().unwrap_or("").to_ascii_uppercase();
        let is_spindle_component = c
            .data_items
            .iter()
            .any(|d| matches!(d.kind.as_str(), "ROTARY_VELOCITY" | "SPINDLE_SPEED"));
        for d in &c.data_items {
            let category = d.category.unwrap_or(Category::Event);
            let role = role_of(d, category, &axis, is_spindle_component, &mut spindle_seen);
            let decimals = match role {
                Role::Position(_) | Role::Angle(_) | Role::PathPosition => 3,
                Role::SpindleSpeed | Role::IdleSpindle => 0,
                _ => 1,
            };
            roles.push((items.len() as u32, role));
            items.push(ItemMeta {
                device: name.to_owned(),
                component_id: c.id.clone(),
                data_item_id: d.id.clone(),
                name: d.name.clone(),
                category,
                // The element-name form, for Conditions too (`System`), as every
                // Observation's type.
                kind: factorydash_core::element_name(&d.kind),
                sub_type: d.sub_type.clone(),
                decimals,
            });
        }
    }
    roles
}

fn role_of(
    d: &DataItem,
    category: Category,
    axis: &str,
    spindle_component: bool,
    spindle_seen: &mut bool,
) -> Role {
    let axis_index = |a: &str| match a.chars().next() {
        Some('X') => 0,
        Some('Y') => 1,
        _ => 2,
    };
    let sub = d.sub_type.as_deref().unwrap_or("");
    let name = d.name.as_deref().unwrap_or("").to_ascii_lowercase();
    if category == Category::Condition {
        let first = ALARMS.iter().position(|a| a.0 == d.kind);
        let count = ALARMS.iter().filter(|a| a.0 == d.kind).count();
        return match first {
            Some(first) => Role::Condition(first as u8, count as u8),
            None => Role::Condition(0, 1),
        };
    }
    match d.kind.as_str() {
        "AVAILABILITY" => Role::Availability,
        "EMERGENCY_STOP" => Role::EStop,
        "EXECUTION" => Role::Execution,
        "CONTROLLER_MODE" => Role::Mode,
        "PROGRAM" if sub.is_empty() || sub == "MAIN" => Role::Program,
        "PROGRAM" => Role::SubProgram,
        "PROGRAM_EDIT_NAME" => Role::Const(Val::Program(0)),
        "x:PROGRAM_COMMENT" | "PROGRAM_COMMENT" if sub.is_empty() => Role::Comment,
        "x:PROGRAM_COMMENT" | "PROGRAM_COMMENT" => Role::Const(Val::Unavailable),
        "LINE" | "LINE_NUMBER" => Role::Line,
        "PART_COUNT" => Role::PartCount,
        "TOOL_NUMBER" | "TOOL_ID" | "x:TOOL_GROUP" => Role::Tool,
        "x:TOOL_SUFFIX" => Role::Const(Val::Word(Word::SuffixA)),
        "ASSET_CHANGED" => Role::ToolAsset,
        "x:UNIT" => Role::Unit,
        "x:SEQUENCE_NUMBER" => Role::SequenceNumber,
        "x:MOTION" => Role::Motion,
        "POWER_STATE" => Role::Const(Val::Word(Word::On)),
        "ROTARY_MODE" if spindle_component => Role::Const(Val::Word(Word::Spindle)),
        "ROTARY_MODE" => Role::Const(Val::Word(Word::Index)),
        t if t.ends_with("_OVERRIDE") && category == Category::Sample => {
            Role::Const(Val::Num(100.0))
        }
        t if t.ends_with("_OVERRIDE") => Role::Const(Val::Int(100)),
        "POSITION" if category == Category::Sample => Role::Position(axis_index(axis)),
        "ANGLE" if spindle_component => Role::Const(Val::Num(0.0)),
        "ANGLE" => Role::Angle(usize::from(!matches!(axis.chars().next(), Some('A' | 'B')))),
        "AXIS_FEEDRATE" => Role::AxisFeed(axis_index(axis)),
        "ANGULAR_VELOCITY" if spindle_component => Role::Const(Val::Num(0.0)),
        "ANGULAR_VELOCITY" => {
            Role::RotaryVelocity(usize::from(!matches!(axis.chars().next(), Some('A' | 'B'))))
        }
        "PATH_FEEDRATE" => Role::PathFeed,
        "PATH_POSITION" => Role::PathPosition,
        "ROTARY_VELOCITY" | "SPINDLE_SPEED" => {
            if std::mem::replace(spindle_seen, true) {
                Role::IdleSpindle
            } else {
                Role::SpindleSpeed
            }
        }
        "LOAD" if name.starts_with('s') && spindle_component => {
            if name.starts_with("sload") || name == "spindle_load" {
                Role::SpindleLoad
            } else {
                Role::IdleSpindle
            }
        }
        "LOAD" if matches!(axis.chars().next(), Some('X' | 'Y' | 'Z')) => {
            Role::AxisLoad(axis_index(axis))
        }
        "LOAD" => Role::Const(Val::Num(1.0)),
        "TEMPERATURE" if name.starts_with("stemp") => Role::SpindleTemperature,
        "TEMPERATURE" => Role::Temperature(if spindle_component { 24.0 } else { 31.0 }),
        "ACCUMULATED_TIME" => {
            let what = format!("{sub} {name}").to_ascii_lowercase();
            if what.contains("auto") || what.contains("runtime") {
                Role::AutoTime
            } else if what.contains("cut") || what.contains("spindle") {
                Role::CutTime
            } else {
                Role::TotalTime
            }
        }
        "ASSET_REMOVED" => Role::Const(Val::Unavailable),
        _ if category == Category::Sample => Role::Const(Val::Num(0.0)),
        _ => Role::Const(Val::Unavailable),
    }
}

/// A tool's use, for its CuttingTool asset.
#[derive(Debug, Clone)]
struct ToolUse {
    tool: i32,
    diameter: f32,
    rpm: u32,
    limit: u32,
    parts: u32,
    seconds: f64,
}

/// One operation of a program: a tool cutting part of the pocket.
#[derive(Debug, Clone)]
struct Op {
    tool: i32,
    rpm: f32,
    /// The index of the tool in [`Machine::tools`].
    tool_use: usize,
}

/// A program: a rectangular pocket at (cx, cy), cut in passes, one operation per tool.
#[derive(Debug, Clone)]
struct Program {
    index: u8,
    cx: f32,
    cy: f32,
    w: f32,
    h: f32,
    depth: f32,
    passes: u32,
    ops: Vec<Op>,
    /// Ticks of one cycle.
    ticks: u64,
    lines: u32,
}

/// Where a machine is in its day.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Phase {
    /// MANUAL, READY: a new program being set up.
    Setup,
    /// AUTOMATIC, READY: a part being changed.
    Load,
    /// AUTOMATIC, ACTIVE: cutting.
    Cycle,
    /// An optional stop (M01) inside a cycle: STOPPED.
    OptionalStop,
    /// A Fault holds the cycle: INTERRUPTED.
    Held,
    /// Emergency stop: STOPPED, TRIGGERED.
    EStopped,
    /// The adapter is gone: everything UNAVAILABLE.
    Down,
}

/// What a machine is doing at a moment of its cycle.
#[derive(Debug, Clone, Copy, Default)]
struct Pose {
    pos: [f32; 3],
    rot: [f32; 2],
    cutting: bool,
    rapid: bool,
    op: usize,
    spindle: f32,
}

/// One simulated machine: its roles, its state, its RNG.
struct Machine {
    rng: StdRng,
    uuid: String,
    first_item: usize,
    roles: Vec<(u32, Role)>,
    /// The last value published of each item (by position in `roles`).
    last: Vec<Option<Val>>,
    fault_per_tick: f64,
    cycle_ticks: f64,
    rate_hz: f64,
    phase: Phase,
    phase_left: u64,
    program: Program,
    parts_left_in_batch: u32,
    cycle_pos: u64,
    part_count: i32,
    pose: Pose,
    prev_pos: [f32; 3],
    prev_rot: [f32; 2],
    /// The alarm raised: role index, level, alarm, ticks left.
    alarm: Option<(usize, ConditionLevel, u8, u64)>,
    spindle_temp: f32,
    auto_time: f64,
    cut_time: f64,
    total_time: f64,
    tools: Vec<ToolUse>,
    /// Force every item out on the next step (start, back from Down).
    republish: bool,
}

impl Machine {
    fn new(
        mut rng: StdRng,
        first_item: usize,
        roles: Vec<(u32, Role)>,
        settings: &SimSettings,
        uuid: String,
        worn_tool: bool,
    ) -> Self {
        let rate_hz = settings.rate_hz;
        let cycle_ticks = (settings.cycle_time.as_secs_f64() * rate_hz).max(20.0);
        let mut tools: Vec<ToolUse> = (0..6)
            .map(|i| {
                let diameter = [6.0, 8.0, 10.0, 12.0, 16.0, 25.0][i];
                ToolUse {
                    tool: (i as i32 + 1) * 2 + rng.random_range(0..2),
                    diameter,
                    rpm: (60_000.0 / diameter) as u32 / 10 * 10,
                    limit: rng.random_range(20..60) * 10,
                    parts: rng.random_range(0..150),
                    seconds: 0.0,
                }
            })
            .collect();
        // On one machine in three (the first, the fourth, …) the largest tool starts past
        // its warning (90 % of its life), so that a board shows tools near their life
        // limit from the start without every tile saying so.
        if worn_tool {
            if let Some(worn) = tools.last_mut() {
                worn.parts = worn.limit - worn.limit / 20;
            }
        }
        let n = roles.len();
        let mut m = Machine {
            uuid,
            first_item,
            roles,
            last: vec![None; n],
            fault_per_tick: settings.fault_rate / 3600.0 / rate_hz,
            cycle_ticks,
            rate_hz,
            phase: Phase::Setup,
            phase_left: 0,
            program: Program {
                index: 0,
                cx: 0.0,
                cy: 0.0,
                w: 0.0,
                h: 0.0,
                depth: 0.0,
                passes: 1,
                ops: Vec::new(),
                ticks: 1,
                lines: 1,
            },
            parts_left_in_batch: 0,
            cycle_pos: 0,
            part_count: rng.random_range(0..500),
            pose: Pose {
                pos: [0.0, 0.0, 100.0],
                ..Pose::default()
            },
            prev_pos: [0.0, 0.0, 100.0],
            prev_rot: [0.0; 2],
            alarm: None,
            spindle_temp: 24.0,
            auto_time: rng.random_range(100_000.0..2_000_000.0),
            cut_time: 0.0,
            total_time: 0.0,
            tools,
            republish: true,
            rng,
        };
        m.cut_time = m.auto_time * 0.6;
        m.total_time = m.auto_time * 1.7;
        m.new_program();
        // Machines start staggered: a short setup, of a different length each.
        let stagger = (cycle_ticks * 0.3).max(1.0) as u64;
        m.phase_left = m.rng.random_range(1..=stagger);
        m
    }

    /// Picks the next program and a batch size; enters Setup.
    fn new_program(&mut self) {
        let r = &mut self.rng;
        let n_ops = r.random_range(1..=3usize);
        let mut ops = Vec::new();
        for _ in 0..n_ops {
            let tool_use = r.random_range(0..self.tools.len());
            let t = &self.tools[tool_use];
            ops.push(Op {
                tool: t.tool,
                rpm: t.rpm as f32,
                tool_use,
            });
        }
        self.program = Program {
            index: r.random_range(0..PROGRAMS.len()) as u8,
            cx: r.random_range(-150.0..150.0f32).round(),
            cy: r.random_range(-100.0..100.0f32).round(),
            w: r.random_range(40.0..120.0f32).round(),
            h: r.random_range(30.0..90.0f32).round(),
            depth: r.random_range(4.0..20.0f32).round(),
            passes: r.random_range(2..=4),
            ops,
            ticks: (self.cycle_ticks * r.random_range(0.7..1.3))
                .round()
                .max(20.0) as u64,
            lines: r.random_range(200..900),
        };
        self.parts_left_in_batch = r.random_range(4..=15);
        self.phase = Phase::Setup;
        let setup = self.cycle_ticks / self.rate_hz * r.random_range(0.2..0.5);
        self.phase_left = ticks(self.rate_hz, setup);
        self.cycle_pos = 0;
    }

    /// The pose at `u` (0..1) of the cycle.
    fn pose_at(&self, u: f64) -> Pose {
        let p = &self.program;
        let home = [0.0f32, 0.0, 100.0];
        let corner = [p.cx - p.w / 2.0, p.cy - p.h / 2.0, 5.0];
        let lerp = |a: [f32; 3], b: [f32; 3], t: f32| {
            [
                a[0] + (b[0] - a[0]) * t,
                a[1] + (b[1] - a[1]) * t,
                a[2] + (b[2] - a[2]) * t,
            ]
        };
        let n_ops = p.ops.len().max(1);
        if u < 0.05 {
            return Pose {
                pos: lerp(home, corner, (u / 0.05) as f32),
                rapid: true,
                ..Pose::default()
            };
        }
        if u >= 0.95 {
            let last = lerp(corner, [corner[0], corner[1], 50.0], 1.0);
            return Pose {
                pos: lerp(last, home, ((u - 0.95) / 0.05) as f32),
                rapid: true,
                op: n_ops - 1,
                rot: [0.0, ((n_ops - 1) * 90) as f32],
                ..Pose::default()
            };
        }
        let s = (u - 0.05) / 0.9 * n_ops as f64;
        let op = (s.floor() as usize).min(n_ops - 1);
        let within = s - op as f64;
        let rot = [if op % 2 == 1 { 30.0 } else { 0.0 }, (op * 90) as f32];
        if within < 0.08 {
            // Tool change: up, new tool, down to the corner; the table indexes.
            let t = (within / 0.08) as f32;
            let up = [corner[0], corner[1], 50.0];
            let prev_rot = [
                if op % 2 == 0 && op > 0 { 30.0 } else { 0.0 },
                (op.saturating_sub(1) * 90) as f32,
            ];
            let pos = if t < 0.5 {
                lerp(corner, up, t * 2.0)
            } else {
                lerp(up, corner, (t - 0.5) * 2.0)
            };
            let k = t.min(1.0);
            return Pose {
                pos,
                rot: [
                    prev_rot[0] + (rot[0] - prev_rot[0]) * k,
                    prev_rot[1] + (rot[1] - prev_rot[1]) * k,
                ],
                rapid: true,
                op,
                ..Pose::default()
            };
        }
        // Cutting: `passes` depths, three loops of the contour each, inset by a stepover.
        let c = (within - 0.08) / 0.92;
        let loops = f64::from(p.passes) * 3.0;
        let l = (c * loops).floor().min(loops - 1.0);
        let frac = (c * loops - l) as f32;
        let pass = (l / 3.0).floor() as f32;
        let inset = (l % 3.0) as f32 * 6.0;
        let z = -p.depth * (pass + 1.0) / p.passes as f32;
        let (x0, y0) = (corner[0] + inset, corner[1] + inset);
        let (w, h) = ((p.w - 2.0 * inset).max(2.0), (p.h - 2.0 * inset).max(2.0));
        let perimeter = 2.0 * (w + h);
        let mut d = frac * perimeter;
        let (x, y) = if d < w {
            (x0 + d, y0)
        } else {
            d -= w;
            if d < h {
                (x0 + w, y0 + d)
            } else {
                d -= h;
                if d < w {
                    (x0 + w - d, y0 + h)
                } else {
                    (x0, y0 + h - (d - w))
                }
            }
        };
        Pose {
            pos: [x, y, z],
            rot,
            cutting: true,
            rapid: false,
            op,
            spindle: p.ops.get(op).map_or(0.0, |o| o.rpm),
        }
    }

    /// One tick: moves the machine on and appends what changed to `out`.
    fn step(&mut self, tick: u64, dt: f64, out: &mut Vec<(u32, Val)>) {
        let _ = tick;
        self.advance(dt);
        let pose = self.pose;
        let v: [f32; 3] =
            std::array::from_fn(|i| ((pose.pos[i] - self.prev_pos[i]) as f64 / dt).abs() as f32);
        let w: [f32; 2] =
            std::array::from_fn(|i| ((pose.rot[i] - self.prev_rot[i]) as f64 / dt).abs() as f32);
        self.prev_pos = pose.pos;
        self.prev_rot = pose.rot;
        let path_feed = (v[0] * v[0] + v[1] * v[1] + v[2] * v[2]).sqrt();
        let down = self.phase == Phase::Down;
        let active = self.phase == Phase::Cycle;
        let op = self.program.ops.get(pose.op);
        let republish = std::mem::replace(&mut self.republish, false);
        for r in 0..self.roles.len() {
            let (item, role) = self.roles[r];
            let val = if down {
                match role {
                    Role::Condition(..) => Val::Cond(ConditionLevel::Unavailable, 0),
                    _ => Val::Unavailable,
                }
            } else {
                match role {
                    Role::Availability => Val::Word(Word::Available),
                    Role::EStop => Val::Word(if self.phase == Phase::EStopped {
                        Word::Triggered
                    } else {
                        Word::Armed
                    }),
                    Role::Execution => Val::Word(match self.phase {
                        Phase::Setup | Phase::Load => Word::Ready,
                        Phase::Cycle => Word::Active,
                        Phase::OptionalStop | Phase::EStopped | Phase::Down => Word::Stopped,
                        Phase::Held => Word::Interrupted,
                    }),
                    Role::Mode => Val::Word(match self.phase {
                        Phase::Setup | Phase::EStopped => Word::Manual,
                        _ => Word::Automatic,
                    }),
                    Role::Program => Val::Program(self.program.index),
                    Role::Comment => Val::Comment(self.program.index),
                    Role::SubProgram => Val::Sub(pose.op as u8),
                    Role::Line => Val::Int(
                        1 + (self.cycle_pos * u64::from(self.program.lines)
                            / self.program.ticks.max(1)) as i32,
                    ),
                    Role::PartCount => Val::Int(self.part_count),
                    Role::Tool => Val::Int(op.map_or(0, |o| o.tool)),
                    Role::ToolAsset => Val::ToolAsset(op.map_or(0, |o| o.tool)),
                    Role::Unit => Val::Int(pose.op as i32 + 1),
                    Role::SequenceNumber => Val::Int((pose.op as i32 + 1) * 10),
                    Role::Motion => Val::Word(if pose.rapid { Word::Rapid } else { Word::Feed }),
                    Role::Position(i) => Val::Num(round(pose.pos[i], 3)),
                    Role::Angle(i) => Val::Num(round(pose.rot[i], 3)),
                    Role::AxisFeed(i) => Val::Num(round(v[i], 1)),
                    Role::RotaryVelocity(i) => Val::Num(round(w[i], 1)),
                    Role::PathFeed => Val::Num(round(path_feed, 1)),
                    Role::PathPosition => Val::Vec3(pose.pos.map(|p| round(p, 3))),
                    Role::AxisLoad(i) => {
                        let moving = v[i] > 0.0;
                        let load = if moving {
                            4.0 + 20.0 * (v[i] / 200.0).min(1.0)
                                + if pose.cutting { 12.0 } else { 0.0 }
                                + self.rng.random_range(0.0..3.0f32)
                        } else {
                            2.0
                        };
                        Val::Num(round(load, 1))
                    }
                    Role::SpindleLoad => {
                        let load = if pose.cutting && active {
                            18.0 + 30.0 * (self.program.depth / 20.0)
                                + self.rng.random_range(-4.0..4.0f32)
                        } else {
                            0.0
                        };
                        Val::Num(round(load, 1))
                    }
                    Role::SpindleSpeed => Val::Num(if active && pose.cutting {
                        pose.spindle
                    } else {
                        0.0
                    }),
                    Role::IdleSpindle => Val::Num(0.0),
                    Role::SpindleTemperature => Val::Num(round(self.spindle_temp, 1)),
                    Role::Temperature(base) => {
                        // A slow daily drift of ±1.5 °C.
                        let t = self.total_time / 86_400.0 * std::f64::consts::TAU;
                        Val::Num(round(base + 1.5 * t.sin() as f32, 1))
                    }
                    Role::AutoTime => Val::Num(self.auto_time.floor() as f32),
                    Role::CutTime => Val::Num(self.cut_time.floor() as f32),
                    Role::TotalTime => Val::Num(self.total_time.floor() as f32),
                    Role::Condition(..) => match self.alarm {
                        Some((at, level, alarm, _)) if at == r => Val::Cond(level, alarm),
                        _ => Val::Cond(ConditionLevel::Normal, 0),
                    },
                    Role::Const(v) => v,
                }
            };
            if republish || self.last[r] != Some(val) {
                self.last[r] = Some(val);
                out.push((item, val));
            }
        }
    }

    /// Moves the state on by one tick of `dt` seconds.
    fn advance(&mut self, dt: f64) {
        // Availability drops: a quarter of the alarm rate, at most 6 an hour.
        let drop_per_tick = (self.fault_per_tick / 4.0).min(6.0 / 3600.0 / self.rate_hz);
        if self.phase != Phase::Down && self.rng.random_bool(drop_per_tick) {
            self.phase = Phase::Down;
            self.phase_left = ticks(self.rate_hz, self.rng.random_range(10.0..40.0));
            self.alarm = None;
            return;
        }
        if self.phase == Phase::Down {
            self.phase_left = self.phase_left.saturating_sub(1);
            if self.phase_left == 0 {
                self.republish = true;
                self.phase = Phase::Setup;
                self.phase_left = ticks(self.rate_hz, 5.0);
                self.cycle_pos = 0;
                self.pose = Pose {
                    pos: [0.0, 0.0, 100.0],
                    ..Pose::default()
                };
            }
            return;
        }
        self.total_time += dt;
        // Alarms: one at a time.
        match &mut self.alarm {
            Some((_, level, _, left)) => {
                *left = left.saturating_sub(1);
                if *left == 0 {
                    let was = *level;
                    self.alarm = None;
                    match self.phase {
                        Phase::Held if was == ConditionLevel::Fault => self.phase = Phase::Cycle,
                        Phase::EStopped => {
                            self.phase = Phase::Setup;
                            self.phase_left = ticks(self.rate_hz, 5.0);
                            self.cycle_pos = 0;
                        }
                        _ => {}
                    }
                }
            }
            None => {
                if self.rng.random_bool(self.fault_per_tick.min(1.0)) {
                    self.raise();
                }
            }
        }
        self.spindle_temp +=
            (24.0 + 14.0 * self.pose.spindle / 12_000.0 - self.spindle_temp) * (dt / 300.0) as f32;
        match self.phase {
            Phase::Setup | Phase::Load => {
                self.pose.spindle = 0.0;
                self.phase_left = self.phase_left.saturating_sub(1);
                if self.phase_left == 0 {
                    self.phase = Phase::Cycle;
                    self.cycle_pos = 0;
                }
            }
            Phase::OptionalStop => {
                self.phase_left = self.phase_left.saturating_sub(1);
                if self.phase_left == 0 {
                    self.phase = Phase::Cycle;
                }
            }
            Phase::Held | Phase::EStopped | Phase::Down => {
                self.pose.spindle = 0.0;
            }
            Phase::Cycle => {
                self.cycle_pos += 1;
                self.auto_time += dt;
                let u = self.cycle_pos as f64 / self.program.ticks as f64;
                if u >= 1.0 {
                    self.end_cycle();
                    return;
                }
                self.pose = self.pose_at(u);
                if self.pose.cutting {
                    self.cut_time += dt;
                    if let Some(op) = self.program.ops.get(self.pose.op) {
                        self.tools[op.tool_use].seconds += dt;
                    }
                }
                // An optional stop (M01) in one cycle of five, at its middle.
                if self.cycle_pos == self.program.ticks / 2 && self.rng.random_bool(0.2) {
                    self.phase = Phase::OptionalStop;
                    self.phase_left = ticks(self.rate_hz, self.rng.random_range(1.0..4.0));
                    self.pose.spindle = 0.0;
                }
            }
        }
    }

    /// A cycle ends: a part more, the tools' use counted, the next part or program.
    fn end_cycle(&mut self) {
        self.part_count += 1;
        for op in &self.program.ops {
            self.tools[op.tool_use].parts += 1;
        }
        self.pose = Pose {
            pos: [0.0, 0.0, 100.0],
            ..Pose::default()
        };
        self.parts_left_in_batch = self.parts_left_in_batch.saturating_sub(1);
        if self.parts_left_in_batch == 0 {
            self.new_program();
        } else {
            self.phase = Phase::Load;
            let load = self.program.ticks as f64 / self.rate_hz * self.rng.random_range(0.05..0.2);
            self.phase_left = ticks(self.rate_hz, load);
        }
        self.cycle_pos = 0;
    }

    /// Raises an alarm on one of the machine's conditions: a Warning (the cycle goes on) or
    /// a Fault (the cycle is held; one in ten an emergency stop), for 3 to 20 seconds.
    fn raise(&mut self) {
        let conditions: Vec<usize> = (0..self.roles.len())
            .filter(|&r| matches!(self.roles[r].1, Role::Condition(..)))
            .collect();
        if conditions.is_empty() {
            return;
        }
        let at = conditions[self.rng.random_range(0..conditions.len())];
        let fault = self.rng.random_bool(0.3);
        let left = ticks(self.rate_hz, self.rng.random_range(3.0..20.0));
        let Role::Condition(first, count) = self.roles[at].1 else {
            return;
        };
        let alarm = first + self.rng.random_range(0..count.max(1));
        let level = if fault {
            ConditionLevel::Fault
        } else {
            ConditionLevel::Warning
        };
        self.alarm = Some((at, level, alarm, left));
        if fault {
            if self.rng.random_bool(0.1) {
                self.phase = Phase::EStopped;
                self.pose.spindle = 0.0;
            } else if self.phase == Phase::Cycle {
                self.phase = Phase::Held;
                self.pose.spindle = 0.0;
            }
        }
    }
}

/// Ticks of `seconds` at `rate_hz`, at least one.
fn ticks(rate_hz: f64, seconds: f64) -> u64 {
    (seconds * rate_hz).round().max(1.0) as u64
}

fn round(v: f32, decimals: i32) -> f32 {
    let k = 10f32.powi(decimals);
    let r = (v * k).round() / k;
    if r == 0.0 {
        0.0
    } else {
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(buffer: usize) -> SimSettings {
        SimSettings {
            agents: 1,
            machines_per_agent: 3,
            rate_hz: 10.0,
            seed: 7,
            duration: None,
            buffer,
            fault_rate: 60.0,
            cycle_time: Duration::from_secs(5),
            faults: true,
        }
    }

    fn run_ticks(source: &SimSource, ticks: usize) -> Vec<(u32, u32, Val)> {
        let mut batch = Vec::new();
        for _ in 0..ticks {
            source.tick(&mut batch);
        }
        let ring = source.ring.lock().unwrap();
        ring.recs.iter().map(|r| (r.tick, r.item, r.val)).collect()
    }

    #[test]
    fn every_data_item_is_published_at_the_first_tick() {
        let source = SimSource::new(&settings(1 << 16), &models().unwrap(), 0, Utc::now());
        assert_eq!(source.devices.devices.len(), 3);
        run_ticks(&source, 1);
        let ring = source.ring.lock().unwrap();
        assert_eq!(ring.recs.len(), source.items.len());
        assert!(ring.latest.iter().all(Option::is_some));
    }

    #[test]
    fn the_same_seed_makes_the_same_observations() {
        let models = models().unwrap();
        let one = SimSource::new(&settings(1 << 16), &models, 0, Utc::now());
        let two = SimSource::new(&settings(1 << 16), &models, 0, Utc::now());
        let a = run_ticks(&one, 600);
        assert_eq!(a, run_ticks(&two, 600));
        // Machines move: far more than the first tick's one observation per data item.
        assert!(a.len() > one.items.len() * 2, "{} observations", a.len());
    }

    #[test]
    fn a_full_buffer_drops_the_oldest() {
        let source = SimSource::new(&settings(100), &models().unwrap(), 0, Utc::now());
        run_ticks(&source, 50);
        let generated = source.generated.load(Ordering::SeqCst);
        assert!(generated > 100);
        let (first, last) = source.sequences(0);
        assert_eq!((first, last), (generated - 99, generated));
        let page = source.page(first, 10);
        let sequences: Vec<u64> = page.iter().map(|o| o.sequence).collect();
        assert_eq!(sequences, (first..first + 10).collect::<Vec<_>>());
    }
}
