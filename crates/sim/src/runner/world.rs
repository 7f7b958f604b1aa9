//! One simulation in progress: the simulated world (labels, noise streams,
//! the event queue, the temperature sensor) around the real code under test
//! (the receiver parser and the refclock).

use super::*;

/// One simulation in progress: the world (labels, noise streams, event
/// queue) and the real code under test (parser and refclock).
pub(super) struct Sim<'a> {
    pub(super) s: &'a Scenario,
    leap: Option<LeapEvent>,
    /// `labels[k]`: the UTC second that true second k is, leap seconds included.
    labels: Vec<UtcSecond>,
    clock: SimClock,
    pub(super) refclock: Refclock<SimClock>,
    assembler: EpochAssembler,
    pub(super) idle_gap_ns: i64,
    pps_rng: Xoshiro256PlusPlus,
    nmea_rng: Xoshiro256PlusPlus,
    spurious_rng: Xoshiro256PlusPlus,
    spurious_gap: Option<Exp<f64>>,
    next_spurious_ns: i64,
    pub(super) queue: Queue,
    sequence: u32,
    pub(super) burst_end_prev_ns: i64,
    epochs: Vec<Epoch>,
    details: RunDetails,
    stats: Stats,
    pps_this_s: u32,
    chunks_this_s: u32,
    sensor: Option<SensorSim>,
    /// The receiver's time pulse: its quantisation and TIM-TP.
    timing: TimingReceiver,
    /// Drop, duplicate and delay draws for TIM-TP.
    tim_tp_rng: Xoshiro256PlusPlus,
    /// A TIM-TP held back to go out after the pulse it describes.
    late_tim_tp: Vec<u8>,
}

/// The simulated temperature sensor: the box's temperature through a
/// first-order lag, plus noise and quantisation, and the scenario's faults.
struct SensorSim {
    rng: Xoshiro256PlusPlus,
    lagged_k: f64,
    last_s: f64,
    last_c: Option<f64>,
}

impl<'a> Sim<'a> {
    pub(super) fn new(s: &'a Scenario, settings: &SimSettings) -> Option<Self> {
        let config = &settings.refclock;
        let start_unix = s.start_unix_nanos()?;
        let first = UtcSecond::from_unix_secs(start_unix.secs())?;
        let leap = s.leap_event();
        let leap_on = |label: &UtcSecond| match leap {
            Some(ev) if ev.day == label.date() => ev.change,
            _ => LeapChange::None,
        };
        let label_count = usize::try_from(s.duration_s).ok()?.checked_add(2)?;
        let mut labels = Vec::with_capacity(label_count);
        labels.push(first);
        for k in 1..label_count {
            let prev = labels[k - 1];
            labels.push(prev.next(leap_on(&prev)));
        }

        let osc = Oscillator::new(&OscillatorParams::from(&s.clock), s.seed);
        let clock = SimClock::new(
            osc,
            start_unix,
            s.clock.initial_offset_s * NANOS_PER_SEC as f64,
        );
        let refclock = Refclock::new(config, clock.clone(), None);
        let sensor = config.temperature_sensor.is_some().then(|| SensorSim {
            rng: rng(s.seed, 4),
            lagged_k: 0.0,
            last_s: 0.0,
            last_c: None,
        });
        let parser_config = &settings.gnss;
        // Scenario dates may predate the build (a 2016 leap second): unless
        // the configuration names one, put the GPS week-rollover pivot just
        // before the start, as a replay does.
        let pivot = parser_config.rollover_pivot.unwrap_or_else(|| {
            first
                .date()
                .checked_sub_days(chrono::Days::new(30))
                .unwrap_or(first.date())
        });
        let assembler = EpochAssembler::with_pivot(parser_config, pivot);

        let mut spurious_rng = rng(s.seed, 3);
        let rate_per_s = s.pps.spurious_per_hour / 3600.0;
        let spurious_gap = if rate_per_s > 0.0 {
            Exp::new(rate_per_s).ok()
        } else {
            None
        };
        let next_spurious_ns = match &spurious_gap {
            Some(exp) => truncate_to_i64(exp.sample(&mut spurious_rng) * NANOS_PER_SEC as f64),
            None => i64::MAX,
        };
        let details = empty_details();
        Some(Self {
            s,
            leap,
            labels,
            clock,
            refclock,
            assembler,
            idle_gap_ns: i64::from(parser_config.idle_gap_ms) * 1_000_000,
            pps_rng: rng(s.seed, 1),
            nmea_rng: rng(s.seed, 2),
            spurious_rng,
            spurious_gap,
            next_spurious_ns,
            queue: Queue::new(),
            sequence: 0,
            burst_end_prev_ns: i64::MIN,
            epochs: Vec::new(),
            details,
            stats: Stats::new(s.warmup_s),
            pps_this_s: 0,
            chunks_this_s: 0,
            sensor,
            timing: TimingReceiver::new(&s.receiver, rng(s.seed, 5)),
            tim_tp_rng: rng(s.seed, 6),
            late_tim_tp: Vec::new(),
        })
    }

    /// Reads the simulated sensor at true time `t_s` and hands the reading
    /// to the refclock (or nothing, while the scenario says it is missing).
    fn read_sensor(&mut self, t_s: f64) {
        let cfg = &self.s.sensor;
        let box_k = self
            .clock
            .with_oscillator(|o| o.sensed_temperature_delta_k());
        let Some(sn) = self.sensor.as_mut() else {
            return;
        };
        let noise: f64 = StandardNormal.sample(&mut sn.rng);
        let dt = (t_s - sn.last_s).max(0.0);
        sn.last_s = t_s;
        sn.lagged_k += if cfg.lag_s > 0.0 {
            (box_k - sn.lagged_k) * (1.0 - (-dt / cfg.lag_s).exp())
        } else {
            box_k - sn.lagged_k
        };
        if cfg.missing.iter().any(|w| w.contains(t_s)) {
            return;
        }
        let reading = if cfg.garbage.iter().any(|w| w.contains(t_s)) {
            // Alternate the kinds of garbage a driver can return.
            match truncate_to_i64(t_s).rem_euclid(3) {
                0 => SensorReading::Unreadable("simulated: not a number".into()),
                1 => SensorReading::Celsius(-273.0),
                _ => SensorReading::Celsius(f64::NAN),
            }
        } else if let (true, Some(v)) = (cfg.freeze.iter().any(|w| w.contains(t_s)), sn.last_c) {
            SensorReading::Celsius(v)
        } else {
            let jump: f64 = cfg
                .jump
                .iter()
                .filter(|j| t_s >= j.from_s && t_s < j.to_s)
                .map(|j| j.offset_k)
                .sum();
            let mut v = cfg.base_c + sn.lagged_k + cfg.noise_k * noise + jump;
            if cfg.quantisation_k > 0.0 {
                v = (v / cfg.quantisation_k).round() * cfg.quantisation_k;
            }
            sn.last_c = Some(v);
            SensorReading::Celsius(v)
        };
        self.refclock
            .on_temperature(self.clock.monotonic(), &reading);
    }

    /// Queues everything that happens because of true second `k`: its pulse,
    /// line noise, and the receiver's burst that labels it.
    pub(super) fn schedule_second(&mut self, k: u64) {
        let s = self.s;
        let t0 = second_start_ns(k);
        let tk = k as f64;
        if self.sensor.is_some() && k.is_multiple_of(s.sensor.interval_s.max(1)) {
            self.queue.push(t0 + SENSOR_AT_NS, Event::Temperature);
        }
        // Draw every random number whether or not it is used, so that an
        // outage does not shift the noise of the seconds after it.
        let pps_z: f64 = StandardNormal.sample(&mut self.pps_rng);
        let nmea_z: f64 = StandardNormal.sample(&mut self.nmea_rng);
        // This second's pulse leaves on the receiver's tick nearest the true second.
        let pulse = self.timing.advance();
        let mut uniform = || -> f64 { StandardUniform.sample(&mut self.tim_tp_rng) };
        let (drop_u, duplicate_u, late_u) = (uniform(), uniform(), uniform());

        if !s.pps.outages.iter().any(|w| w.contains(tk)) {
            let at = t0
                + truncate_to_i64(
                    (pulse.emitted_offset_ns + s.pps.latency_ns + s.pps.jitter_ns * pps_z).round(),
                );
            self.sequence = self.sequence.wrapping_add(1);
            let sequence = self.sequence;
            self.queue.push(
                at,
                Event::Edge {
                    sequence,
                    spurious: false,
                },
            );
        }
        if let Some(exp) = self.spurious_gap {
            while self.next_spurious_ns < t0 + NANOS_PER_SEC {
                self.sequence = self.sequence.wrapping_add(1);
                let sequence = self.sequence;
                let at = self.next_spurious_ns.max(t0) + truncate_to_i64(s.pps.latency_ns.round());
                self.queue.push(
                    at,
                    Event::Edge {
                        sequence,
                        spurious: true,
                    },
                );
                let gap_s: f64 = exp.sample(&mut self.spurious_rng);
                self.next_spurious_ns += truncate_to_i64(gap_s * NANOS_PER_SEC as f64).max(1);
            }
        }

        if s.nmea.outages.iter().any(|w| w.contains(tk)) {
            return;
        }
        let true_label = self.label(k);
        let shift_s = s
            .nmea
            .wrong_second
            .iter()
            .find(|w| tk >= w.from_s && tk < w.to_s)
            .map_or(0, |w| w.offset_s);
        // Rebuilt only when shifted: POSIX seconds cannot say 23:59:60.
        let shifted = |label: UtcSecond| match shift_s {
            0 => label,
            _ => UtcSecond::from_unix_secs(label.unix_secs() + shift_s).unwrap_or(label),
        };
        let shown = shifted(true_label);
        let fix = if s.nmea.invalid_fix.iter().any(|w| w.contains(tk)) {
            FixInfo::none()
        } else {
            FixInfo::good()
        };
        let announce = match self.leap {
            Some(ev) => {
                let to_go = ev.midnight_unix_secs() - true_label.unix_secs();
                let before = to_go > 0 && to_go <= LEAP_ANNOUNCE_S;
                if before || (to_go == 1 && true_label.is_leap_second()) {
                    ev.change
                } else {
                    LeapChange::None
                }
            }
            None => LeapChange::None,
        };
        let mut bytes = nmea_burst(shown, &fix, announce);
        // What a timing receiver adds after its NMEA: last second's late
        // TIM-TP, this second's TIM-TP for the next pulse, survey-in progress.
        bytes.append(&mut self.late_tim_tp);
        if s.receiver.tim_tp {
            let next_label = shifted(self.label(k + 1));
            let frame = encode_tim_tp(&TimingReceiver::tim_tp(next_label, self.timing.upcoming()));
            let r = &s.receiver;
            if drop_u >= r.tim_tp_drop_probability {
                let copies = if duplicate_u < r.tim_tp_duplicate_probability {
                    2
                } else {
                    1
                };
                let out = if late_u < r.tim_tp_late_probability {
                    &mut self.late_tim_tp
                } else {
                    &mut bytes
                };
                for _ in 0..copies {
                    out.extend_from_slice(&frame);
                }
            }
        }
        if let Some(progress) = self.timing.survey_in(k) {
            bytes.extend_from_slice(&encode_tim_svin(&progress));
        }
        let delay_ms = (s.nmea.delay_ms + s.nmea.jitter_ms * nmea_z).clamp(0.0, 999.0);
        let duration_ns = line_ns(bytes.len());
        let mut end = t0 + truncate_to_i64((delay_ms * 1e6).round());
        if end - duration_ns < self.burst_end_prev_ns {
            // The line is still busy with the previous burst: this one goes out after it.
            end = self.burst_end_prev_ns + duration_ns;
        }
        self.burst_end_prev_ns = end;
        let mut at = end - duration_ns;
        for chunk in split_chunks(&bytes) {
            at += line_ns(chunk.len());
            self.queue.push(at, Event::Bytes(chunk.to_vec()));
        }
        self.queue
            .push(end + self.idle_gap_ns + 1_000_000, Event::Flush);
    }

    fn deliver_epochs(&mut self) {
        for e in self.epochs.drain(..) {
            self.details.epochs_parsed += 1;
            self.details.leap_second_epochs += u64::from(e.utc.is_leap_second());
            self.details.leap_announced_epochs += u64::from(e.leap != LeapChange::None);
            self.refclock.on_epoch(&e);
        }
    }

    /// Processes every queued event before true time `limit_ns`.
    pub(super) fn run_until(
        &mut self,
        limit_ns: i64,
        out: &mut dyn Write,
        trace: bool,
    ) -> std::io::Result<()> {
        while let Some((at, event)) = self.queue.pop_before(limit_ns) {
            self.clock.advance_to(at);
            match event {
                Event::Edge { sequence, spurious } => {
                    self.pps_this_s += 1;
                    self.details.edges_sent += 1;
                    self.details.spurious_sent += u64::from(spurious);
                    let edge = PpsEdge {
                        sequence,
                        timestamp: self.clock.realtime(),
                        received: self.clock.monotonic().add_nanos(PPS_WAKEUP_NS),
                        uncertainty_ns: 0,
                    };
                    self.refclock.on_pps(&edge);
                }
                Event::Bytes(bytes) => {
                    self.chunks_this_s += 1;
                    self.details.tim_tp_sent += u64::from(is_tim_tp(&bytes));
                    self.assembler
                        .push(&bytes, self.clock.arrival(), &mut self.epochs);
                    self.deliver_epochs();
                    for report in self.assembler.take_reports() {
                        self.refclock.on_receiver_report(&report);
                    }
                }
                Event::Flush => {
                    self.details.bursts_sent += 1;
                    self.assembler
                        .flush_idle(self.clock.arrival(), &mut self.epochs);
                    self.deliver_epochs();
                }
                Event::Measure { second } => self.measure(second, out, trace)?,
                Event::Temperature => self.read_sensor(at as f64 / NANOS_PER_SEC as f64),
            }
        }
        Ok(())
    }

    /// Ticks the refclock and compares the disciplined clock with true time.
    fn measure(&mut self, second: u64, out: &mut dyn Write, trace: bool) -> std::io::Result<()> {
        let now = self.clock.arrival();
        self.refclock.on_tick(now);
        let status = self.refclock.status();
        let true_now = self.label(second).unix_nanos().add_nanos(MEASURE_AT_NS);
        let err = self.clock.error_ns(true_now);
        let serving = status.serves_synchronised();
        // The bound a client would compute from what is served now.
        let elapsed_s = (now.realtime.nanos_since(status.as_of) as f64 / 1e9).max(0.0);
        let bound = status.root_dispersion_ns + status.dispersion_rate_ns_per_s * elapsed_s;
        self.stats.record(&Measurement {
            second,
            err_ns: err,
            serving,
            bound_ns: bound,
            state: status.state,
        });
        if trace {
            let (sensor_c, health, coeff, sigma) = match &status.thermal {
                Some(t) => (
                    t.reading_c.map_or(String::new(), |c| format!("{c:.3}")),
                    t.sensor.as_str(),
                    format!("{:.5}", t.coefficient_ppm_per_k),
                    format!("{:.5}", t.coefficient_sigma_ppm_per_k),
                ),
                None => (String::new(), "", String::new(), String::new()),
            };
            writeln!(
                out,
                "{second},{},{err:.1},{},{},{bound:.1},{:.1},{:.6},{:.3},{:.3},{},{},{sensor_c},{health},{coeff},{sigma}",
                self.label(second),
                status.state.as_str(),
                u8::from(serving),
                status.offset_ns,
                -status.frequency_ppm,
                self.clock.with_oscillator(|o| o.freq_error_ppb()),
                self.clock.with_oscillator(|o| o.temperature_delta_k()),
                self.pps_this_s,
                self.chunks_this_s,
            )?;
        }
        self.pps_this_s = 0;
        self.chunks_this_s = 0;
        Ok(())
    }

    /// The UTC label of true second `k` of the run.
    #[expect(
        clippy::cast_possible_truncation,
        reason = "`labels` holds one entry per second of the run, so any second the run reaches fits in usize"
    )]
    fn label(&self, k: u64) -> UtcSecond {
        self.labels[k as usize]
    }

    pub(super) fn finish(mut self) -> ScenarioRun {
        self.details.kernel_leap_steps_s = self.clock.leap_steps_s();
        self.details.leap_flag_changes = self
            .clock
            .leap_requests()
            .into_iter()
            .map(|(ns, flag)| {
                let label = usize::try_from(ns / NANOS_PER_SEC)
                    .ok()
                    .and_then(|k| self.labels.get(k))
                    .map_or(String::new(), |l| l.to_string());
                (ns as f64 / 1e9, flag, label)
            })
            .collect();
        self.details.final_status = Some(self.refclock.status());
        self.details.thermal_record = Some(self.refclock.thermal_record());
        let st = &self.stats;
        self.details.served_s = st.served;
        self.details.first_served_bad_s = st.first_served_bad;
        self.details.seconds_in_state = st.seconds_in_state;
        let report = st.report(&self.s.name, self.clock.steps());
        ScenarioRun {
            report,
            details: self.details,
        }
    }
}
