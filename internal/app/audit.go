package app

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"github.com/openivs/openivs/internal/blob"
	"github.com/openivs/openivs/internal/events/audit"
)

// auditLog is the node's audit log and, with --audit-s3-bucket, its
// delivery to S3. Both are nil when off.
type auditLog struct {
	logger  *audit.Logger
	shipper *audit.Shipper
}

// auditShipGrace bounds how long Shutdown tries to deliver the last audit
// files; what is left is delivered by the next start.
const auditShipGrace = 10 * time.Second

// blobStore builds the node's object store: the S3-compatible store of the
// --s3-* settings when they give credentials, else a directory per bucket
// under DATA_DIR/recordings.
func (a *App) blobStore() (blob.Store, error) {
	if a.cfg.S3AccessKeyID == "" {
		return blob.NewLocal(filepath.Join(a.cfg.DataDir, "recordings")), nil
	}
	region := a.cfg.S3Region
	if region == "" {
		region = a.cfg.Region
	}
	s3, err := blob.NewS3(blob.S3Config{
		Endpoint: a.cfg.S3Endpoint, Region: region,
		AccessKeyID: a.cfg.S3AccessKeyID, SecretAccessKey: a.cfg.S3SecretAccessKey,
	})
	if err != nil {
		return nil, fmt.Errorf("object store: %w", err)
	}
	return s3, nil
}

// openAudit starts the audit log (unless --audit-dir off) and hooks it to
// every API call.
func (a *App) openAudit() error {
	dir := a.cfg.AuditPath()
	if dir == "" {
		return nil
	}
	opts := audit.Options{Dir: dir, Region: a.cfg.Region, MaxFileBytes: a.cfg.AuditMaxFileBytes, Logger: a.log}
	if a.cfg.AuditS3Bucket != "" {
		// The node's object store, S3 here: config.Validate requires the
		// --s3-* credentials with --audit-s3-bucket.
		if _, ok := a.recordings.(*blob.S3); !ok {
			return errors.New("audit log: --audit-s3-bucket needs the S3 store (--s3-access-key-id, --s3-secret-access-key)")
		}
		// Before the logger: files already in the directory are the closed
		// ones of an earlier run.
		ship, err := audit.NewShipper(audit.ShipperOptions{
			Dir: dir, Bucket: a.cfg.AuditS3Bucket, Account: a.cfg.AccountID, Region: a.cfg.Region,
			Store: a.recordings, Logger: a.log,
		})
		if err != nil {
			return fmt.Errorf("audit log: %w", err)
		}
		a.audit.shipper = ship
		opts.OnFileClosed = ship.Add
	}
	l, err := audit.New(opts)
	if err != nil {
		if a.audit.shipper != nil {
			_ = a.audit.shipper.Close(context.Background())
		}
		return fmt.Errorf("audit log: %w", err)
	}
	a.audit.logger = l
	a.callHooks = append(a.callHooks, l.Log)
	return nil
}

// closeAudit writes what is queued, closes the current file and delivers
// what it can to S3 before ctx ends (at most auditShipGrace); called once
// the HTTP servers no longer run API calls.
func (a *App) closeAudit(ctx context.Context) error {
	var errs []error
	if a.audit.logger != nil {
		if err := a.audit.logger.Close(); err != nil {
			errs = append(errs, fmt.Errorf("closing audit log: %w", err))
		}
	}
	if a.audit.shipper != nil {
		shipCtx, cancel := context.WithTimeout(ctx, auditShipGrace)
		defer cancel()
		if err := a.audit.shipper.Close(shipCtx); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
