-- The registry's own ES256 signing keys for $resolve retrieval tokens. Kept in the database, not
-- a data directory, so that every API node signs with the same key and publishes the same
-- /.well-known/jwks.json. A key is published from `created` (before it signs, so verifiers'
-- cached key sets learn it first), signs from `not_before` until `retire_at`, and stays
-- published until `publish_until` (retire_at + the longest token lifetime + clock skew), so a
-- trust's PACS gateway can still verify every token it signed.
create table retrieval_key (
  kid text primary key,
  created timestamptz not null,
  not_before timestamptz not null,
  retire_at timestamptz not null,
  publish_until timestamptz not null,
  public_jwk text not null,
  private_jwk text not null
);
create index retrieval_key_publish on retrieval_key (publish_until desc);
