-- Click-to-WhatsApp referrals: when the person arrived through an ad or Page CTA, and until
-- when the 72-hour free entry point window (opened by our first reply within 24 hours) runs.
-- (PostgreSQL twin of migrations/sqlite/0006.)
ALTER TABLE contacts ADD COLUMN referral_at BIGINT;
ALTER TABLE contacts ADD COLUMN free_until BIGINT;
