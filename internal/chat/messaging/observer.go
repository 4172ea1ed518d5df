package messaging

import "errors"

// The Action values of IVS Chat's CloudWatch metrics Requests and
// Deliveries (AWS/IVSChat): the messaging operations.
const (
	MetricSendMessage    = "SendMessage"
	MetricDeleteMessage  = "DeleteMessage"
	MetricDisconnectUser = "DisconnectUser"
	MetricSendEvent      = "SendEvent"
)

// Observer is told what IVS Chat reports to CloudWatch, so that the node
// can export it (internal/metrics). Its methods are called on the hot
// path, from many goroutines: they must be cheap and must not block.
type Observer interface {
	// Request counts one messaging request of action, from a client or
	// from the API (SendEvent, DeleteMessage, DisconnectUser).
	Request(action string)
	// Delivered counts n deliveries of an entity of action to this
	// node's connections.
	Delivered(action string, n int)
	// ReviewFailed says a message review handler (the room's
	// messageReviewHandler uri) could not give a usable answer: err is
	// what Config.Review returned, or the review context's error when it
	// ran out of time.
	ReviewFailed(handlerURI string, err error)
}

// noObserver is the Observer of a Config that has none.
type noObserver struct{}

func (noObserver) Request(string)             {}
func (noObserver) Delivered(string, int)      {}
func (noObserver) ReviewFailed(string, error) {}

// metricAction is the Observer action of a client request's Action.
func metricAction(action string) string {
	switch action {
	case ActionDeleteMessage:
		return MetricDeleteMessage
	case ActionDisconnectUser:
		return MetricDisconnectUser
	default:
		return MetricSendMessage
	}
}

// errNoReviewer is ReviewFailed's error when the server has no
// Config.Review to call.
var errNoReviewer = errors.New("messaging: no review function is configured")
