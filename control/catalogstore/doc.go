// Package catalogstore keeps a catalog (destinations, Amplitude projects
// and mappings) in Redis, so that every replica of cohortsync sees one
// truth instead of each reading its own copy of mappings.yaml.
//
// It is apart from package catalog because catalog is the model and its
// strict decoder, used with no Redis at all (validating a file in review),
// while this package is where the model meets storage and its failure modes.
//
// Apply is idempotent by content: an entry whose stored record equals the
// file's is unchanged and not written, so re-applying an unchanged file
// writes nothing. An entry that is in the store but not in the file is
// reported, never deleted: removing one is a decision (Delete,
// DeleteDestination), not a side effect of a file that lost an entry. One
// Lua script checks and writes a whole apply, so a reader never sees half
// of one, and a mapping never names a destination that is neither applied
// nor stored. A destination is deleted only while no stored mapping names
// it.
//
// Every change (an Apply that changed something, SetEnabled, Delete,
// DeleteDestination) increments a version counter in the same script or
// transaction, so a long-running reader polls one small key (Version) and
// reads the Catalog again only when it grew.
//
// Keys, under Config.Prefix (default "cohortsync:control:", the prefix of
// package segmentlease), apart from the LaunchDarkly Big Segments layout the
// consumer writes, all in one Redis Cluster hash slot:
//
//	<prefix>{catalog}:destinations  hash: destination name -> JSON record
//	<prefix>{catalog}:mappings      hash: mapping name -> JSON record
//	<prefix>{catalog}:amplitude_projects  hash: project name -> JSON record
//	<prefix>{catalog}:version       integer, grows with every change
//
// A record is {"version":1,"hash":...,"mapping":{...}} (or "destination")
// with the entry's normalised fields and its content hash (catalog's
// Mapping.Hash, Destination.Hash); a record that does not decode, is of
// another version or whose hash does not match its content is an error
// naming the key and the field.
//
// A destination's record holds where its Redis password is read (an
// environment variable or a file, catalog.SecretRef), never the password;
// an Amplitude project's record likewise holds where its keys are read. A
// mapping naming a project neither applied nor stored refuses the apply
// like one naming such a destination.
package catalogstore
