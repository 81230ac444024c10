//! Note selection: one or two spendable notes covering a target (amount + fee), since a transfer
//! has two inputs (DESIGN §6). Prefers the single note with the least change, then the pair with
//! the least change.

/// Why no selection covers the target.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SelectionError {
    /// The target is zero.
    #[error("nothing to send: amount plus fee is zero")]
    ZeroTarget,
    /// The target overflows u64.
    #[error("amount plus fee overflows 2^64")]
    Overflow,
    /// Not enough funds at all.
    #[error("insufficient funds: need {needed}, spendable {spendable}")]
    Insufficient {
        /// Target.
        needed: u64,
        /// Total spendable.
        spendable: u64,
    },
    /// Enough in total but not in any two notes.
    #[error(
        "need {needed} but the two largest notes hold {best_pair}: a transfer spends at most two \
         notes; first send smaller amounts to yourself to merge notes"
    )]
    Fragmented {
        /// Target.
        needed: u64,
        /// Sum of the two largest notes.
        best_pair: u64,
    },
}

/// Chooses indices into `values` (one or two) whose sum covers `target` with the least excess;
/// ties go to fewer notes, then to lower indices (older notes).
pub fn select_notes(values: &[u64], target: u64) -> Result<Vec<usize>, SelectionError> {
    if target == 0 {
        return Err(SelectionError::ZeroTarget);
    }
    let mut best: Option<(u128, usize, Vec<usize>)> = None;
    let mut consider = |sum: u128, picks: Vec<usize>| {
        if sum < target as u128 {
            return;
        }
        let key = (sum - target as u128, picks.len());
        let better = match &best {
            None => true,
            Some((e, n, _)) => key < (*e, *n),
        };
        if better {
            best = Some((key.0, key.1, picks));
        }
    };
    for (i, &v) in values.iter().enumerate() {
        consider(v as u128, vec![i]);
    }
    for i in 0..values.len() {
        for j in i + 1..values.len() {
            consider(values[i] as u128 + values[j] as u128, vec![i, j]);
        }
    }
    if let Some((_, _, picks)) = best {
        return Ok(picks);
    }
    let spendable: u128 = values.iter().map(|&v| v as u128).sum();
    if spendable < target as u128 {
        return Err(SelectionError::Insufficient {
            needed: target,
            spendable: spendable.min(u64::MAX as u128) as u64,
        });
    }
    let mut sorted = values.to_vec();
    sorted.sort_unstable_by(|a, b| b.cmp(a));
    Err(SelectionError::Fragmented {
        needed: target,
        best_pair: sorted[0].saturating_add(sorted.get(1).copied().unwrap_or(0)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefers_exact_then_single_then_pair() {
        assert_eq!(select_notes(&[500, 300, 200], 300).unwrap(), vec![1]);
        assert_eq!(select_notes(&[500, 300, 200], 500).unwrap(), vec![0]);
        // 300 + 200 = 500 is exact: better than 600 alone (excess 100)
        assert_eq!(select_notes(&[600, 300, 200], 500).unwrap(), vec![1, 2]);
        // the smallest sufficient single note
        assert_eq!(select_notes(&[900, 450, 100], 420).unwrap(), vec![1]);
        // only a pair covers it
        assert_eq!(select_notes(&[400, 300, 50], 650).unwrap(), vec![0, 1]);
        // equal excess: one note beats two
        assert_eq!(select_notes(&[100, 60, 40], 100).unwrap(), vec![0]);
    }

    #[test]
    fn reports_why_nothing_fits() {
        assert_eq!(
            select_notes(&[100, 200], 400),
            Err(SelectionError::Insufficient {
                needed: 400,
                spendable: 300
            })
        );
        assert_eq!(
            select_notes(&[], 1),
            Err(SelectionError::Insufficient {
                needed: 1,
                spendable: 0
            })
        );
        assert_eq!(
            select_notes(&[100, 100, 100], 250),
            Err(SelectionError::Fragmented {
                needed: 250,
                best_pair: 200
            })
        );
        assert_eq!(select_notes(&[5], 0), Err(SelectionError::ZeroTarget));
        // no overflow in sums of large notes
        assert_eq!(
            select_notes(&[u64::MAX, u64::MAX], u64::MAX).unwrap(),
            vec![0]
        );
    }
}
