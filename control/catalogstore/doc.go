// Package catalogstore keeps the mappings of a catalog in Redis, so that
// every replica of cohortsync sees one truth instead of each reading its own
// copy of mappings.yaml.
//
// It is apart from package catalog because catalog is the model and its
// strict decoder, used with no Redis at all (validating a file in review),
// while this package is where the model meets storage and its failure modes.
//
// Apply is idempotent by content: a mapping whose stored record equals the
// file's is unchanged and not written, so re-applying an unchanged file
// writes nothing. A mapping that is in the store but not in the file is
// reported, never deleted: removing a mapping is a decision (Delete), not a
// side effect of a file that lost an entry. One Lua script writes a whole
// apply, so a reader never sees half of one.
//
// Keys, under Config.Prefix (default "cohortsync:control:", the prefix of
// package segmentlease), apart from the LaunchDarkly Big Segments layout the
// consumer writes, all in one Redis Cluster hash slot:
//
//	<prefix>{catalog}:mappings  hash: mapping name -> JSON record
//
// A record is {"version":1,"hash":...,"mapping":{...}} with the mapping's
// normalised fields and catalog.Mapping.Hash; a record that does not decode,
// is of another version or whose hash does not match its content is an
// error naming the key and the field.
//
// Destinations are not stored yet: they carry Redis credentials, and where
// those live is a decision still open.
package catalogstore
