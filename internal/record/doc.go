// Package record auto-records live streams to object storage in IVS's
// layout: each rendition as HLS (10-second media files, a playlist of them
// and a byte-range playlist of their keyframe intervals), the master
// playlists, thumbnails and the JSON event files. Media goes through a
// local spool first, so an object store that is down, or a server that
// dies, loses nothing: uploads resume, and Recover closes what a previous
// run left.
package record
