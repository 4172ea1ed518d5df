package chatlog

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"time"
)

// FormatVersion is the version of IVS's chat-log record format: the
// "version" of every record, and part of every name IVS gives its logs.
const FormatVersion = "1.0"

// Record is one logged message or event, as IVS documents it ("IVS Chat
// Logging", Message Content). Fields in IVS's order.
type Record struct {
	// EventTimestamp is when IVS Chat received the message: UTC, RFC
	// 3339 with milliseconds, as SendTime.
	EventTimestamp string `json:"event_timestamp"`
	// Type is MESSAGE or EVENT.
	Type    string `json:"type"`
	Version string `json:"version"`
	// Payload is the MESSAGE or EVENT entity exactly as clients get it.
	Payload json.RawMessage `json:"payload"`
}

// timestamp formats t as event_timestamp (and SendTime) are.
func timestamp(t time.Time) string {
	return t.UTC().Format("2006-01-02T15:04:05.000Z07:00")
}

// encodeRecord returns the record of one entity frame as one line, with
// its newline; line is nil for an entity that is neither a MESSAGE nor an
// EVENT (typ says what it is).
func encodeRecord(at time.Time, frame []byte) (line []byte, typ string, err error) {
	var head struct {
		Type string `json:"Type"`
	}
	if err := json.Unmarshal(frame, &head); err != nil {
		return nil, "", fmt.Errorf("entity is not JSON: %w", err)
	}
	if head.Type != "MESSAGE" && head.Type != "EVENT" {
		return nil, head.Type, nil
	}
	// Compact keeps the entity byte for byte except for whitespace, so
	// that a record is always exactly one line.
	var payload bytes.Buffer
	if err := json.Compact(&payload, frame); err != nil {
		return nil, "", err
	}
	out, err := json.Marshal(Record{EventTimestamp: timestamp(at), Type: head.Type, Version: FormatVersion, Payload: payload.Bytes()})
	if err != nil {
		return nil, "", err
	}
	return append(out, '\n'), head.Type, nil
}

// roomName is what IVS's log names say of a room: its region, account
// and id, from its ARN (arn:aws:ivschat:REGION:ACCOUNT:room/ID).
type roomName struct {
	Region, Account, ID string
}

// parseRoom splits a room ARN; the region and account default to
// fallback's when the ARN does not have them.
func parseRoom(arn string, fallback roomName) roomName {
	n := fallback
	parts := strings.SplitN(arn, ":", 6)
	if len(parts) == 6 {
		if parts[3] != "" {
			n.Region = parts[3]
		}
		if parts[4] != "" {
			n.Account = parts[4]
		}
		arn = parts[5]
	}
	n.ID = arn[strings.LastIndexByte(arn, '/')+1:]
	return n
}

// LogStreamName is the CloudWatch Logs log stream IVS writes a room's
// records to: aws/IVSChatLogs/1.0/room_<room id>.
func LogStreamName(roomID string) string {
	return "aws/IVSChatLogs/" + FormatVersion + "/room_" + roomID
}

// CloudWatchPath is the file standing in for a room's log stream in a log
// group: DIR/cloudwatch/<group>/aws/IVSChatLogs/1.0/room_<room id>.log.
// The group is one escaped path segment (see EscapeName): group names
// hold '/' and may be "..", and must neither leave DIR nor run into
// another group's folder.
func CloudWatchPath(dir, logGroup, roomID string) string {
	stream := strings.Split(LogStreamName(EscapeName(roomID)), "/")
	stream[len(stream)-1] += ".log"
	return filepath.Join(append([]string{dir, "cloudwatch", EscapeName(logGroup)}, stream...)...)
}

// FirehosePath is the file standing in for what a delivery stream
// delivers in the hour of t (UTC), in the layout Firehose gives S3
// objects by default: DIR/firehose/<stream>/YYYY/MM/DD/HH/<stream>-YYYY-MM-DD-HH.log.
func FirehosePath(dir, deliveryStream string, t time.Time) string {
	t = t.UTC()
	name := EscapeName(deliveryStream)
	return filepath.Join(dir, "firehose", name, t.Format("2006"), t.Format("01"), t.Format("02"), t.Format("15"),
		name+"-"+t.Format("2006-01-02-15")+".log")
}

// S3Key is where IVS puts a batch of a room's records in an S3 bucket
// ("IVS Chat Logging", Amazon S3 Bucket):
//
//	AWSLogs/<account>/IVSChatLogs/1.0/<region>/room_<room id>/YYYY/MM/DD/HH/
//	  <account>_IVSChatLogs_1.0_<region>_room_<room id>_YYYYMMDDHHMM_<hash>.log.gz
//
// with the date of t (the batch's first record) in UTC and hash a random
// hex string keeping keys unique.
func S3Key(account, region, roomID string, t time.Time, hash string) string {
	t = t.UTC()
	acct, region, id := EscapeName(account), EscapeName(region), EscapeName(roomID)
	return fmt.Sprintf("AWSLogs/%s/IVSChatLogs/%s/%s/room_%s/%s/%s_IVSChatLogs_%s_%s_room_%s_%s_%s.log.gz",
		acct, FormatVersion, region, id, t.Format("2006/01/02/15"),
		acct, FormatVersion, region, id, t.Format("200601021504"), hash)
}

// randomHash is the <hash> of an S3 key.
func randomHash() string {
	var b [4]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	return hex.EncodeToString(b[:])
}

// maxSegment bounds an escaped name: file names may be 255 bytes, and
// CloudWatch log group names 512 characters.
const maxSegment = 200

// EscapeName makes a destination name (log group, delivery stream) one
// safe path segment: letters, digits, '-', '_', '#' and '.' stay, every
// other byte becomes %XX, as does a leading '.' (so the segment is never
// "." or ".." and never hidden). An empty name is "%". The mapping is
// one-to-one, so names never share a folder; names too long for a file
// name are cut and end with '~' and a hash of the whole name ('~' is
// escaped everywhere else).
func EscapeName(name string) string {
	if name == "" {
		return "%"
	}
	var b strings.Builder
	for i := 0; i < len(name); i++ {
		c := name[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
			c == '-' || c == '_' || c == '#' || (c == '.' && i > 0) {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
		if b.Len() > maxSegment {
			sum := sha256.Sum256([]byte(name))
			s := b.String()
			return s[:maxSegment-len("%XX")] + "~" + hex.EncodeToString(sum[:8])
		}
	}
	return b.String()
}
