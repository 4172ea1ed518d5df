package ivs

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/openivs/openivs/internal/awsapi"
	"github.com/openivs/openivs/internal/blob"
	"github.com/openivs/openivs/internal/store"
)

// RecordingConfiguration is the API shape.
type RecordingConfiguration struct {
	Arn                             string                   `json:"arn"`
	Name                            string                   `json:"name"`
	DestinationConfiguration        DestinationConfiguration `json:"destinationConfiguration"`
	State                           string                   `json:"state"`
	Tags                            map[string]string        `json:"tags"`
	ThumbnailConfiguration          *ThumbnailConfiguration  `json:"thumbnailConfiguration,omitempty"`
	RecordingReconnectWindowSeconds int                      `json:"recordingReconnectWindowSeconds"`
	RenditionConfiguration          *RenditionConfiguration  `json:"renditionConfiguration,omitempty"`
}

// DestinationConfiguration says where recordings go.
type DestinationConfiguration struct {
	S3 *S3DestinationConfiguration `json:"s3,omitempty"`
}

// S3DestinationConfiguration names the bucket.
type S3DestinationConfiguration struct {
	BucketName string `json:"bucketName"`
}

// ThumbnailConfiguration is the API shape of the same name.
type ThumbnailConfiguration struct {
	RecordingMode         string   `json:"recordingMode"`
	TargetIntervalSeconds int64    `json:"targetIntervalSeconds"`
	Resolution            string   `json:"resolution,omitempty"`
	Storage               []string `json:"storage"`
}

// RenditionConfiguration is the API shape of the same name.
type RenditionConfiguration struct {
	RenditionSelection string   `json:"renditionSelection"`
	Renditions         []string `json:"renditions"`
}

// Recording configuration states.
const (
	RecordingStateCreating     = "CREATING"
	RecordingStateActive       = "ACTIVE"
	RecordingStateCreateFailed = "CREATE_FAILED"
)

// BucketChecker checks that a bucket exists and takes objects, as
// blob.Store.CheckBucket does.
type BucketChecker interface {
	CheckBucket(ctx context.Context, bucket string) error
}

// BucketCheckTimeout bounds the check of a new recording configuration's
// bucket; a check that takes longer fails (CREATE_FAILED). IVS takes "a
// few seconds, but it can be up to 20 seconds".
const BucketCheckTimeout = 30 * time.Second

type recordingDoc struct {
	RecordingConfiguration
}

func recordingOut(r *store.Resource) (*RecordingConfiguration, error) {
	var d recordingDoc
	if err := json.Unmarshal(r.Doc, &d); err != nil {
		return nil, err
	}
	out := d.RecordingConfiguration
	out.Arn, out.Tags = r.ARN, tagsOrEmpty(r.Tags)
	return &out, nil
}

func (s *Service) createRecordingConfiguration(ctx context.Context, call *awsapi.Call) (any, error) {
	var in struct {
		Name                     string `json:"name"`
		DestinationConfiguration struct {
			S3 *S3DestinationConfiguration `json:"s3"`
		} `json:"destinationConfiguration"`
		Tags                   map[string]string `json:"tags"`
		ThumbnailConfiguration *struct {
			RecordingMode         *string  `json:"recordingMode"`
			TargetIntervalSeconds *int64   `json:"targetIntervalSeconds"`
			Resolution            string   `json:"resolution"`
			Storage               []string `json:"storage"`
		} `json:"thumbnailConfiguration"`
		RecordingReconnectWindowSeconds int `json:"recordingReconnectWindowSeconds"`
		RenditionConfiguration          *struct {
			RenditionSelection *string  `json:"renditionSelection"`
			Renditions         []string `json:"renditions"`
		} `json:"renditionConfiguration"`
	}
	if err := call.Decode(&in); err != nil {
		return nil, err
	}
	if err := validateTags(in.Tags); err != nil {
		return nil, err
	}
	if in.DestinationConfiguration.S3 == nil {
		return nil, awsapi.Validation("destinationConfiguration.s3: an S3 destination is required.")
	}
	// The model checks length and characters; S3 has a few rules more.
	if err := blob.CheckBucketName(in.DestinationConfiguration.S3.BucketName); err != nil {
		return nil, awsapi.Validation("destinationConfiguration.s3.bucketName: %v.", err)
	}
	// IVS's defaults: thumbnails every 60 s, sequential; every rendition recorded.
	thumb := &ThumbnailConfiguration{RecordingMode: "INTERVAL", TargetIntervalSeconds: 60, Storage: []string{"SEQUENTIAL"}}
	if t := in.ThumbnailConfiguration; t != nil {
		if t.RecordingMode != nil {
			thumb.RecordingMode = *t.RecordingMode
		}
		if t.TargetIntervalSeconds != nil {
			thumb.TargetIntervalSeconds = *t.TargetIntervalSeconds
		}
		thumb.Resolution = t.Resolution
		if t.Storage != nil {
			if len(t.Storage) == 0 {
				return nil, awsapi.Validation("thumbnailConfiguration.storage: must name SEQUENTIAL, LATEST or both.")
			}
			thumb.Storage = dedupe(t.Storage)
		}
	}
	rend := &RenditionConfiguration{RenditionSelection: "ALL", Renditions: []string{}}
	if rc := in.RenditionConfiguration; rc != nil {
		if rc.RenditionSelection != nil {
			rend.RenditionSelection = *rc.RenditionSelection
		}
		rend.Renditions = dedupe(rc.Renditions)
		switch {
		case rend.RenditionSelection == "CUSTOM" && len(rend.Renditions) == 0:
			return nil, awsapi.Validation("renditionConfiguration.renditions: CUSTOM rendition selection needs at least one rendition.")
		case rend.RenditionSelection != "CUSTOM" && len(rend.Renditions) > 0:
			return nil, awsapi.Validation("renditionConfiguration.renditions: renditions can be listed only with renditionSelection CUSTOM.")
		}
	}
	// As IVS: CREATING until the bucket is checked in the background.
	state := RecordingStateActive
	if s.cfg.Buckets != nil {
		state = RecordingStateCreating
	}
	d := recordingDoc{RecordingConfiguration{
		Name: in.Name, DestinationConfiguration: DestinationConfiguration{S3: in.DestinationConfiguration.S3},
		State:                  state,
		ThumbnailConfiguration: thumb, RecordingReconnectWindowSeconds: in.RecordingReconnectWindowSeconds,
		RenditionConfiguration: rend,
	}}
	doc, _ := json.Marshal(d)
	r := &store.Resource{
		ARN: s.arn(call.Account, KindRecordingConfig, randomID(12)), Kind: KindRecordingConfig,
		Account: call.Account, Name: in.Name, Tags: in.Tags, Doc: doc,
	}
	err := s.store.Insert(ctx, r, store.Quota{Max: s.cfg.Quotas.RecordingConfigurations})
	if errors.Is(err, store.ErrQuotaExceeded) {
		return nil, awsapi.QuotaExceeded("Recording configuration quota of %d has been reached.", s.cfg.Quotas.RecordingConfigurations)
	} else if err != nil {
		return nil, storeError(err)
	}
	out, err := recordingOut(r)
	if err != nil {
		return nil, err
	}
	if state == RecordingStateCreating {
		s.checkBucket(r.ARN, in.DestinationConfiguration.S3.BucketName)
	}
	return map[string]any{"recordingConfiguration": out}, nil
}

// checkBucket checks a CREATING recording configuration's bucket in the
// background and makes the configuration ACTIVE or CREATE_FAILED. A check
// cut short by Close leaves it CREATING for ResumeBucketChecks.
func (s *Service) checkBucket(arn, bucket string) {
	s.goBackground(func(ctx context.Context) {
		checkCtx, cancel := context.WithTimeout(ctx, BucketCheckTimeout)
		err := s.cfg.Buckets.CheckBucket(checkCtx, bucket)
		cancel()
		if ctx.Err() != nil {
			return
		}
		state := RecordingStateActive
		if err != nil {
			state = RecordingStateCreateFailed
			s.log.Warn("recording configuration CREATE_FAILED: its bucket failed the check",
				"arn", arn, "bucket", bucket, "err", err)
		}
		_, err = s.store.Update(ctx, arn, func(r *store.Resource) error {
			var d recordingDoc
			if err := json.Unmarshal(r.Doc, &d); err != nil {
				return err
			}
			if d.State != RecordingStateCreating {
				return errSettled // another node's check came first
			}
			d.State = state
			doc, err := json.Marshal(d)
			r.Doc = doc
			return err
		})
		if err != nil && !errors.Is(err, errSettled) && !errors.Is(err, store.ErrNotFound) && ctx.Err() == nil {
			s.log.Error("recording configuration: storing its state", "arn", arn, "state", state, "err", err)
		}
	})
}

var errSettled = errors.New("ivs: recording configuration state already settled")

// ResumeBucketChecks starts the bucket check of every recording
// configuration still CREATING (whose check a stop or crash cut short) and
// returns how many it started. Without a BucketChecker it does nothing.
func (s *Service) ResumeBucketChecks(ctx context.Context) (int, error) {
	if s.cfg.Buckets == nil {
		return 0, nil
	}
	items, err := s.store.List(ctx, store.Query{Kind: KindRecordingConfig})
	if err != nil {
		return 0, err
	}
	n := 0
	for _, r := range items {
		c, err := recordingOut(r)
		if err != nil {
			return n, err
		}
		if c.State == RecordingStateCreating && c.DestinationConfiguration.S3 != nil {
			s.checkBucket(r.ARN, c.DestinationConfiguration.S3.BucketName)
			n++
		}
	}
	return n, nil
}

func (s *Service) listRecordingConfigurations(ctx context.Context, call *awsapi.Call) (any, error) {
	var in struct {
		MaxResults *int    `json:"maxResults"`
		NextToken  *string `json:"nextToken"`
	}
	if err := call.Decode(&in); err != nil {
		return nil, err
	}
	q := store.Query{Kind: KindRecordingConfig, Account: call.Account}
	items, next, err := paginate(ctx, s.store, call, q, "", in.MaxResults, 100, in.NextToken)
	if err != nil {
		return nil, err
	}
	type summary struct {
		Arn                      string                   `json:"arn"`
		Name                     string                   `json:"name"`
		DestinationConfiguration DestinationConfiguration `json:"destinationConfiguration"`
		State                    string                   `json:"state"`
		Tags                     map[string]string        `json:"tags"`
	}
	list := make([]summary, 0, len(items))
	for _, r := range items {
		c, err := recordingOut(r)
		if err != nil {
			return nil, err
		}
		list = append(list, summary{c.Arn, c.Name, c.DestinationConfiguration, c.State, c.Tags})
	}
	return listOut("recordingConfigurations", list, next), nil
}
