-- Click-to-WhatsApp referrals: when the person arrived through an ad or Page CTA, and until
-- when the 72-hour free entry point window (opened by our first reply within 24 hours) runs.
ALTER TABLE contacts ADD COLUMN referral_at INTEGER;
ALTER TABLE contacts ADD COLUMN free_until INTEGER;
