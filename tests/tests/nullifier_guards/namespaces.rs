//! Which named namespace of the batch circuit each unsatisfied constraint lies in.
//!
//! `circuits/src/batch/circuit.rs` opens an `ns!` namespace (a tracing span with target `r1cs`)
//! around each guard. While the circuit is synthesised, a small tracing subscriber records the
//! constraint count when each of the circuit's own namespaces is entered and left, giving the
//! range of constraint indices it produced; every constraint the assignment violates is then
//! named after the innermost range holding it. (arkworks' `ConstraintLayer` would name
//! constraints too, but it is a tracing-subscriber 0.2 layer whose registry feature would
//! rebuild the whole arkworks stack for this one test.)

use std::cell::RefCell;
use std::ops::Range;
use std::sync::{Arc, Mutex};

use ark_bn254::Fr;
use ark_ff::Zero;
use ark_relations::r1cs::{ConstraintSynthesizer, ConstraintSystem, ConstraintSystemRef};
use tracing::span::{Attributes, Id, Record};
use tracing::subscriber::Interest;
use tracing::{Event, Metadata, Subscriber};
use veil_circuits::BatchCircuit;

/// Module of the namespaces recorded.
const CIRCUIT_MODULE: &str = "veil_circuits::batch::circuit";

/// Name given to a violated constraint outside every recorded namespace.
pub const UNNAMED: &str = "(outside every namespace)";

thread_local! {
    /// The constraint system being synthesised on this thread.
    static CS: RefCell<Option<ConstraintSystemRef<Fr>>> = const { RefCell::new(None) };
}

fn constraints_so_far() -> usize {
    CS.with(|cs| cs.borrow().as_ref().map_or(0, |cs| cs.num_constraints()))
}

#[derive(Default)]
struct Recorded {
    /// Span id `i + 1` is `names[i]`.
    names: Vec<&'static str>,
    /// Entered spans: id and constraint count at entry.
    open: Vec<(u64, usize)>,
    ranges: Vec<(&'static str, Range<usize>)>,
}

/// Records the constraint range of every namespace of the batch circuit.
struct NamespaceRecorder(Arc<Mutex<Recorded>>);

impl Subscriber for NamespaceRecorder {
    fn register_callsite(&self, _: &'static Metadata<'static>) -> Interest {
        // Ask each time: other threads' subscribers (or none) must not fix the answer.
        Interest::sometimes()
    }

    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.is_span()
            && metadata.target() == "r1cs"
            && metadata.module_path() == Some(CIRCUIT_MODULE)
    }

    fn new_span(&self, span: &Attributes<'_>) -> Id {
        let mut r = self.0.lock().unwrap();
        r.names.push(span.metadata().name());
        Id::from_u64(r.names.len() as u64)
    }

    fn record(&self, _: &Id, _: &Record<'_>) {}

    fn record_follows_from(&self, _: &Id, _: &Id) {}

    fn event(&self, _: &Event<'_>) {}

    fn enter(&self, span: &Id) {
        let at = constraints_so_far();
        self.0.lock().unwrap().open.push((span.into_u64(), at));
    }

    fn exit(&self, span: &Id) {
        let at = constraints_so_far();
        let mut r = self.0.lock().unwrap();
        let (id, start) = r
            .open
            .pop()
            .expect("a namespace is left after it is entered");
        assert_eq!(id, span.into_u64(), "namespaces are left innermost first");
        let name = r.names[id as usize - 1];
        r.ranges.push((name, start..at));
    }
}

/// Synthesises `circuit` and returns, for every constraint its assignment violates (in order),
/// the namespace it lies in: empty exactly when the circuit is satisfied.
pub fn violated(circuit: BatchCircuit) -> Vec<&'static str> {
    let recorded = Arc::new(Mutex::new(Recorded::default()));
    let cs = ConstraintSystem::<Fr>::new_ref();
    CS.with(|c| *c.borrow_mut() = Some(cs.clone()));
    tracing::subscriber::with_default(NamespaceRecorder(recorded.clone()), || {
        circuit.generate_constraints(cs.clone()).unwrap()
    });
    CS.with(|c| *c.borrow_mut() = None);
    let satisfied = cs.is_satisfied().unwrap();

    cs.finalize();
    let matrices = cs.to_matrices().unwrap();
    let z = {
        let cs = cs.borrow().unwrap();
        [
            cs.instance_assignment.as_slice(),
            cs.witness_assignment.as_slice(),
        ]
        .concat()
    };
    let eval = |row: &Vec<(Fr, usize)>| {
        row.iter()
            .fold(Fr::zero(), |acc, (coeff, col)| acc + *coeff * z[*col])
    };
    let recorded = recorded.lock().unwrap();
    let names: Vec<&'static str> = (0..matrices.num_constraints)
        .filter(|&i| eval(&matrices.a[i]) * eval(&matrices.b[i]) != eval(&matrices.c[i]))
        .map(|i| {
            recorded
                .ranges
                .iter()
                .filter(|(_, range)| range.contains(&i))
                .min_by_key(|(_, range)| range.len())
                .map_or(UNNAMED, |(name, _)| *name)
        })
        .collect();
    assert_eq!(
        names.is_empty(),
        satisfied,
        "the row evaluation agrees with arkworks' is_satisfied"
    );
    names
}
