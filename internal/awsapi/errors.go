package awsapi

import (
	"fmt"
	"net/http"
)

// Error is an AWS service exception: its code is the exception's shape name
// (ValidationException, ResourceNotFoundException, ...), sent in the
// x-amzn-ErrorType header and the JSON body.
type Error struct {
	Code    string
	Message string
	// Status overrides the HTTP status; 0 takes it from the service model
	// (or 400 for exceptions the model does not define).
	Status int
	// Fields are the exception's own members besides the message (for
	// example IVS Chat's resourceId, resourceType, limit, reason and
	// fieldList). Only the members that the service model declares for the
	// exception are sent, so one Error serves services whose shapes differ:
	// a ValidationException keeps its reason and fieldList for IVS Chat,
	// whose model has them, and loses them for IVS, whose model has not.
	Fields map[string]any
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

// Errorf builds an Error with a formatted message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// The exceptions every service here shares.
const (
	CodeValidation    = "ValidationException"
	CodeNotFound      = "ResourceNotFoundException"
	CodeConflict      = "ConflictException"
	CodeQuotaExceeded = "ServiceQuotaExceededException"
	CodeThrottling    = "ThrottlingException"
	CodeAccessDenied  = "AccessDeniedException"
	CodeInternal      = "InternalServerException"
)

// ReasonFieldValidationFailed is the ValidationExceptionReason (an IVS Chat
// member) of input that breaks a field's rules.
const ReasonFieldValidationFailed = "FIELD_VALIDATION_FAILED"

// FieldError is one entry of a ValidationException's fieldList.
type FieldError struct {
	Name    string `json:"name"`
	Message string `json:"message"`
}

// Validation is a ValidationException with a formatted message; where the
// model has the member, its reason is FIELD_VALIDATION_FAILED.
func Validation(format string, args ...any) *Error {
	return validationError(fmt.Sprintf(format, args...), nil)
}

// FieldValidation is a ValidationException about one input field: the
// message reads "field: message", and where the model has the members the
// exception carries reason FIELD_VALIDATION_FAILED and a fieldList naming
// the field.
func FieldValidation(field, format string, args ...any) *Error {
	msg := fmt.Sprintf(format, args...)
	return validationError(field+": "+msg, []FieldError{{Name: field, Message: msg}})
}

func validationError(msg string, fields []FieldError) *Error {
	e := &Error{Code: CodeValidation, Message: msg, Fields: map[string]any{"reason": ReasonFieldValidationFailed}}
	if len(fields) > 0 {
		e.Fields["fieldList"] = fields
	}
	return e
}

func NotFound(format string, args ...any) *Error { return Errorf(CodeNotFound, format, args...) }
func Conflict(format string, args ...any) *Error { return Errorf(CodeConflict, format, args...) }
func QuotaExceeded(format string, args ...any) *Error {
	return Errorf(CodeQuotaExceeded, format, args...)
}

// statusForCode is used for errors raised outside any service model
// (authentication, routing, throttling before an operation is known).
var statusForCode = map[string]int{
	CodeValidation:                        http.StatusBadRequest,
	CodeNotFound:                          http.StatusNotFound,
	CodeConflict:                          http.StatusConflict,
	CodeQuotaExceeded:                     http.StatusPaymentRequired,
	CodeThrottling:                        http.StatusTooManyRequests,
	CodeAccessDenied:                      http.StatusForbidden,
	CodeInternal:                          http.StatusInternalServerError,
	"UnrecognizedClientException":         http.StatusForbidden,
	"InvalidSignatureException":           http.StatusForbidden,
	"IncompleteSignatureException":        http.StatusForbidden,
	"MissingAuthenticationTokenException": http.StatusForbidden,
	"UnknownOperationException":           http.StatusNotFound,
	"SerializationException":              http.StatusBadRequest,
	"RequestEntityTooLargeException":      http.StatusRequestEntityTooLarge,
	"UnsupportedMediaTypeException":       http.StatusUnsupportedMediaType,
	"InvalidClientTokenId":                http.StatusForbidden,
	"RequestTimeTooSkewed":                http.StatusForbidden,
	"ServiceUnavailable":                  http.StatusServiceUnavailable,
	"ServiceUnavailableException":         http.StatusServiceUnavailable,
	"MethodNotAllowedException":           http.StatusMethodNotAllowed,
}
