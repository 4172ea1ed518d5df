// Package blob owns object storage: writing, reading and listing objects in
// buckets, for recordings and the audit log, behind one interface (Store)
// with two implementations:
//
//   - S3, a client of an S3-compatible store (AWS S3, MinIO, Versity, Ceph,
//     ...), buckets addressed path-style;
//   - Local, a directory per bucket under a root directory, for a node
//     without an object store.
//
// A Local "bucket" is just a directory, and nobody creates it beforehand:
// Local.CheckBucket creates it when it is missing (the check IVS makes when
// a recording configuration is created), so a recording configuration
// naming any valid bucket works out of the box. Put, Get and List do not
// create buckets; in a bucket that was never checked they answer
// ErrNoSuchBucket, as S3 does.
//
// Both stores follow S3's naming rules for buckets, so a configuration
// that works on one works on the other. Local has to refuse a few keys S3
// takes: keys whose segments are empty, "." or ".." (foo//bar, ../x, a/),
// absolute keys, keys with NUL, and keys whose segments start with
// ".openivs-" (its temporary files and write probes); a key cannot be both
// an object and the folder of other objects ("a" and "a/b"). Local keeps
// no content type: what serves the files derives it from the name.
package blob
