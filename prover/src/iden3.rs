//! The circom ecosystem's binary formats (iden3's `binfileutils`), written from Veil's circuit
//! and witnesses so that snarkjs and rapidsnark can check and prove the identical R1CS:
//!
//! - `.r1cs` version 1: sections header (1), constraints (2) and wire-to-label map (3). Wire 0 is
//!   the constant one, then the public inputs, then the witness variables, in Veil's (arkworks')
//!   order; the public inputs are declared as public inputs (no outputs, no private inputs: every
//!   witness variable is an internal wire). Coefficients little-endian, in normal form.
//! - `.wtns` version 2: sections header (1) and values (2), one per wire in the same order.
//!
//! Every section is `type: u32, size: u64, body`, after the magic, the version and the number of
//! sections, all little-endian.

use std::io::{self, Write};

use ark_bn254::Fr;
use ark_ff::{BigInteger, PrimeField};

use crate::r1cs::{Matrix, R1cs};

/// Bytes per field element.
const N8: u32 = 32;

fn prime_le() -> Vec<u8> {
    Fr::MODULUS.to_bytes_le()
}

fn field_le(x: &Fr) -> Vec<u8> {
    x.into_bigint().to_bytes_le()
}

fn file_header(w: &mut impl Write, magic: &[u8; 4], version: u32, sections: u32) -> io::Result<()> {
    w.write_all(magic)?;
    w.write_all(&version.to_le_bytes())?;
    w.write_all(&sections.to_le_bytes())
}

fn section_header(w: &mut impl Write, kind: u32, size: u64) -> io::Result<()> {
    w.write_all(&kind.to_le_bytes())?;
    w.write_all(&size.to_le_bytes())
}

/// Writes `r1cs` as an iden3 `.r1cs` (version 1).
pub fn write_r1cs(w: &mut impl Write, r1cs: &R1cs) -> io::Result<()> {
    let too_large = |what| io::Error::new(io::ErrorKind::InvalidInput, what);
    let wires = u32::try_from(r1cs.num_variables()).map_err(|_| too_large("too many wires"))?;
    let constraints =
        u32::try_from(r1cs.num_constraints()).map_err(|_| too_large("too many constraints"))?;
    let public = (r1cs.num_instance_variables() - 1) as u32;
    file_header(w, b"r1cs", 1, 3)?;

    section_header(w, 1, 4 + u64::from(N8) + 4 * 4 + 8 + 4)?;
    w.write_all(&N8.to_le_bytes())?;
    w.write_all(&prime_le())?;
    for n in [wires, 0, public, 0] {
        w.write_all(&n.to_le_bytes())?;
    }
    w.write_all(&u64::from(wires).to_le_bytes())?;
    w.write_all(&constraints.to_le_bytes())?;

    let size = 12 * r1cs.num_constraints() as u64 + (4 + 32) * r1cs.num_nonzeros() as u64;
    section_header(w, 2, size)?;
    let coefficients: Vec<Vec<u8>> = r1cs.coefficients().iter().map(field_le).collect();
    for i in 0..r1cs.num_constraints() {
        for matrix in [Matrix::A, Matrix::B, Matrix::C] {
            let row = r1cs.row(matrix, i);
            w.write_all(&(row.len() as u32).to_le_bytes())?;
            for t in row {
                w.write_all(&t.var.to_le_bytes())?;
                w.write_all(&coefficients[t.coeff as usize])?;
            }
        }
    }

    section_header(w, 3, 8 * u64::from(wires))?;
    for label in 0..u64::from(wires) {
        w.write_all(&label.to_le_bytes())?;
    }
    w.flush()
}

/// Writes a full assignment (the constant one, the public inputs, then the witness) as an iden3
/// `.wtns` (version 2).
pub fn write_wtns(w: &mut impl Write, assignment: &[Fr]) -> io::Result<()> {
    let n = u32::try_from(assignment.len())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "too many wires"))?;
    file_header(w, b"wtns", 2, 2)?;
    section_header(w, 1, 4 + u64::from(N8) + 4)?;
    w.write_all(&N8.to_le_bytes())?;
    w.write_all(&prime_le())?;
    w.write_all(&n.to_le_bytes())?;
    section_header(w, 2, u64::from(N8) * u64::from(n))?;
    for x in assignment {
        w.write_all(&field_le(x))?;
    }
    w.flush()
}

#[cfg(test)]
mod tests {
    //! The files read back by an independent reader of the format (sections found by type, not
    //! by position), and the witness checked against the constraints as read.

    use super::*;
    use ark_ff::{UniformRand, Zero};
    use ark_r1cs_std::{alloc::AllocVar, eq::EqGadget, fields::fp::FpVar, R1CSVar};
    use ark_relations::r1cs::{ConstraintSystem, OptimizationGoal};
    use rand::SeedableRng;
    use std::collections::HashMap;

    struct Cursor<'a>(&'a [u8]);

    impl<'a> Cursor<'a> {
        fn take(&mut self, n: usize) -> &'a [u8] {
            let (head, tail) = self.0.split_at(n);
            self.0 = tail;
            head
        }
        fn u32(&mut self) -> u32 {
            u32::from_le_bytes(self.take(4).try_into().unwrap())
        }
        fn u64(&mut self) -> u64 {
            u64::from_le_bytes(self.take(8).try_into().unwrap())
        }
        fn field(&mut self) -> Fr {
            let b = self.take(32);
            let x = Fr::from_le_bytes_mod_order(b);
            assert_eq!(field_le(&x), b, "a canonical field element");
            x
        }
    }

    /// The sections of a file with `magic` and `version`, by type.
    fn sections<'a>(bytes: &'a [u8], magic: &[u8], version: u32) -> HashMap<u32, &'a [u8]> {
        let mut c = Cursor(bytes);
        assert_eq!(c.take(4), magic);
        assert_eq!(c.u32(), version);
        let n = c.u32();
        let mut out = HashMap::new();
        for _ in 0..n {
            let kind = c.u32();
            let size = c.u64() as usize;
            out.insert(kind, c.take(size));
        }
        assert!(c.0.is_empty(), "nothing after the last section");
        out
    }

    fn circuit() -> (R1cs, Vec<Fr>) {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(9);
        let cs = ConstraintSystem::<Fr>::new_ref();
        cs.set_optimization_goal(OptimizationGoal::Constraints);
        let mut x = FpVar::new_input(cs.clone(), || Ok(Fr::rand(&mut rng))).unwrap();
        let y = FpVar::new_witness(cs.clone(), || Ok(Fr::rand(&mut rng))).unwrap();
        for _ in 0..50 {
            x = &x * &x * &x - &x * &y * Fr::from(7u64) + Fr::from(5u64);
        }
        let out = FpVar::new_input(cs.clone(), || x.value()).unwrap();
        x.enforce_equal(&out).unwrap();
        cs.finalize();
        let r1cs = R1cs::from_matrices(&cs.to_matrices().unwrap()).unwrap();
        let cs = cs.borrow().unwrap();
        let z = [
            cs.instance_assignment.as_slice(),
            cs.witness_assignment.as_slice(),
        ]
        .concat();
        (r1cs, z)
    }

    #[test]
    fn r1cs_and_wtns_read_back_and_the_witness_satisfies_the_constraints_read() {
        let (r1cs, z) = circuit();
        let mut r1cs_bytes = Vec::new();
        write_r1cs(&mut r1cs_bytes, &r1cs).unwrap();
        let mut wtns_bytes = Vec::new();
        write_wtns(&mut wtns_bytes, &z).unwrap();

        let s = sections(&r1cs_bytes, b"r1cs", 1);
        let mut h = Cursor(s[&1]);
        assert_eq!(h.u32(), 32);
        assert_eq!(h.take(32), prime_le());
        let wires = h.u32() as usize;
        assert_eq!(wires, z.len());
        let (outputs, public, private) = (h.u32(), h.u32(), h.u32());
        assert_eq!((outputs, public, private), (0, 2, 0));
        assert_eq!(h.u64() as usize, wires);
        let m = h.u32() as usize;
        assert_eq!(m, r1cs.num_constraints());
        assert!(h.0.is_empty());

        let w = sections(&wtns_bytes, b"wtns", 2);
        let mut wh = Cursor(w[&1]);
        assert_eq!(wh.u32(), 32);
        assert_eq!(wh.take(32), prime_le());
        assert_eq!(wh.u32() as usize, wires);
        let mut values = Cursor(w[&2]);
        let witness: Vec<Fr> = (0..wires).map(|_| values.field()).collect();
        assert!(values.0.is_empty());
        assert_eq!(witness, z);

        let mut c = Cursor(s[&2]);
        let lc = |c: &mut Cursor| {
            let n = c.u32();
            (0..n).fold(Fr::zero(), |acc, _| {
                let wire = c.u32() as usize;
                acc + c.field() * witness[wire]
            })
        };
        for i in 0..m {
            let (a, b, cc) = (lc(&mut c), lc(&mut c), lc(&mut c));
            assert_eq!(a * b, cc, "constraint {i}");
        }
        assert!(c.0.is_empty());
        let mut labels = Cursor(s[&3]);
        for wire in 0..wires as u64 {
            assert_eq!(labels.u64(), wire);
        }

        // A wrong witness value breaks a constraint as read from the file.
        let mut bad = z.clone();
        bad[3] += Fr::from(1u64);
        assert!(crate::qap::evaluate(&r1cs, &bad).is_err());
    }
}
