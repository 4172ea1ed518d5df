package metrics

import "github.com/prometheus/client_golang/prometheus"

// IVS Chat's CloudWatch metrics (namespace AWS/IVSChat) as Prometheus
// series of this node. IVS's MessagingRequests and MessagingDeliveries
// are the sums of Requests and Deliveries over action.
const (
	ChatConcurrentConnections = "openivs_chat_concurrent_connections"                          // ConcurrentChatConnections
	ChatRequests              = "openivs_chat_requests_total"                                  // Requests{Action}, MessagingRequests
	ChatDeliveries            = "openivs_chat_deliveries_total"                                // Deliveries{Action}, MessagingDeliveries
	ChatInvocationErrors      = "openivs_chat_review_invocation_errors_total"                  // InvocationErrors{Uri}
	ChatResponseErrors        = "openivs_chat_review_response_validation_errors_total"         // ResponseValidationErrors{Uri}
	ChatLogErrors             = "openivs_chat_log_destination_errors_total"                    // LogDestinationErrors{LoggingConfiguration}
	ChatLogAccessDenied       = "openivs_chat_log_destination_access_denied_errors_total"      // LogDestinationAccessDeniedError{LoggingConfiguration}
	ChatLogNotFound           = "openivs_chat_log_destination_resource_not_found_errors_total" // LogDestinationResourceNotFoundErrors{LoggingConfiguration}
)

// chatActions are the Action values of Requests and Deliveries; their
// series exist from the start, at zero.
var chatActions = []string{"SendMessage", "DeleteMessage", "DisconnectUser", "SendEvent"}

// chatMetrics is the chat part of a Registry.
type chatMetrics struct {
	connections      funcSource[int]
	requests         *prometheus.CounterVec
	deliveries       *prometheus.CounterVec
	invocationErrors *prometheus.CounterVec
	responseErrors   *prometheus.CounterVec
	logErrors        *prometheus.CounterVec
	logAccessDenied  *prometheus.CounterVec
	logNotFound      *prometheus.CounterVec
}

func (r *Registry) registerChat() {
	c := &r.chat
	counter := func(name, help string, labels ...string) *prometheus.CounterVec {
		v := prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, labels)
		r.reg.MustRegister(v)
		return v
	}
	c.requests = counter(ChatRequests, "IVS Chat Requests: messaging requests by action, from clients and from the API.", "action")
	c.deliveries = counter(ChatDeliveries, "IVS Chat Deliveries: messaging entities delivered to this node's chat connections, by action.", "action")
	c.invocationErrors = counter(ChatInvocationErrors,
		"IVS Chat InvocationErrors: message review handler calls that failed or timed out, by handler (the room's messageReviewHandler uri).", "uri")
	c.responseErrors = counter(ChatResponseErrors,
		"IVS Chat ResponseValidationErrors: message review handler answers that were not valid, by handler.", "uri")
	c.logErrors = counter(ChatLogErrors,
		"IVS Chat LogDestinationErrors: failed deliveries of chat log records, of every kind, by logging configuration ARN.", "logging_configuration")
	c.logAccessDenied = counter(ChatLogAccessDenied,
		"IVS Chat LogDestinationAccessDeniedError: deliveries of chat log records the destination refused (S3 403, a local permission error).", "logging_configuration")
	c.logNotFound = counter(ChatLogNotFound,
		"IVS Chat LogDestinationResourceNotFoundErrors: deliveries of chat log records to a destination that does not exist (S3 bucket).", "logging_configuration")
	for _, a := range chatActions {
		c.requests.WithLabelValues(a)
		c.deliveries.WithLabelValues(a)
	}
	r.reg.MustRegister(&gaugeFuncCollector{desc: prometheus.NewDesc(ChatConcurrentConnections,
		"IVS Chat ConcurrentChatConnections: open chat connections of this node.", nil, nil), src: &c.connections})
}

// ObserveChatConnections sets where ConcurrentChatConnections comes from
// (the messaging server's open connections). Unset, it has no series.
func (r *Registry) ObserveChatConnections(fn func() int) { r.chat.connections.set(fn) }

// ChatRequest counts one messaging request of action.
func (r *Registry) ChatRequest(action string) { r.chat.requests.WithLabelValues(action).Inc() }

// ChatDelivered counts n deliveries of an entity of action.
func (r *Registry) ChatDelivered(action string, n int) {
	r.chat.deliveries.WithLabelValues(action).Add(float64(n))
}

// ChatReviewError counts a failed message review by the handler uri: an
// invalid answer (ResponseValidationErrors) or no answer at all
// (InvocationErrors).
func (r *Registry) ChatReviewError(uri string, invalidResponse bool) {
	if invalidResponse {
		r.chat.responseErrors.WithLabelValues(uri).Inc()
		return
	}
	r.chat.invocationErrors.WithLabelValues(uri).Inc()
}

// ChatLogError counts a failed delivery of chat log records to a logging
// configuration's destination; accessDenied and notFound say which kind
// it was, if one of those.
func (r *Registry) ChatLogError(loggingConfiguration string, accessDenied, notFound bool) {
	r.chat.logErrors.WithLabelValues(loggingConfiguration).Inc()
	switch {
	case accessDenied:
		r.chat.logAccessDenied.WithLabelValues(loggingConfiguration).Inc()
	case notFound:
		r.chat.logNotFound.WithLabelValues(loggingConfiguration).Inc()
	}
}
