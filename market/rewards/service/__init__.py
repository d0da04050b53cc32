"""Use cases of the rewards catalogue (plain functions taking a Session; they flush, never
commit): :mod:`.catalogue` (rewards), :mod:`.redemptions` (vouchers: redeem, confirm, cancel,
expire), :mod:`.offsets` ("offset me" shares and their retirements), :mod:`.qr` (voucher QR)."""
