-- Marks a code as used by a user, only if nobody used it yet.
-- Parameters, in order: used_by, used_at (unix ms), code. One row affected = it was free.
UPDATE marking_codes SET used_by = ?, used_at = ? WHERE code = ? AND used_by IS NULL
