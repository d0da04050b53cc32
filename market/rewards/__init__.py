"""Carbon points rewards: the catalogue of merchants' and the platform's rewards, redemptions held
against the resident's points, single-use voucher codes with QR, merchant confirmation, expiry,
and "offset me" (whole tonnes retired in residents' names, a share each)."""
