package chat

import (
	"fmt"

	"github.com/openivs/openivs/internal/awsapi"
)

// IVS Chat's exceptions carry members besides the message: resourceId and
// resourceType (ResourceNotFound, Conflict, ServiceQuotaExceeded), limit
// (ServiceQuotaExceeded) and reason/fieldList (Validation). The model's
// ResourceType enum has only ROOM; logging configurations are named
// LOGGING_CONFIGURATION, which the SDKs accept as an unknown enum value.
var resourceTypes = map[string]string{
	KindRoom:                 "ROOM",
	KindLoggingConfiguration: "LOGGING_CONFIGURATION",
}

var kindNames = map[string]string{
	KindRoom:                 "room",
	KindLoggingConfiguration: "logging configuration",
}

// idOf returns the resource id of an ARN (the part after the last slash).
func idOf(arn string) string {
	if a, ok := parseARN(arn); ok {
		return a.ID
	}
	return arn
}

func notFound(kind, arn string) *awsapi.Error {
	return &awsapi.Error{
		Code:    awsapi.CodeNotFound,
		Message: fmt.Sprintf("The %s %s was not found.", kindNames[kind], arn),
		Fields:  map[string]any{"resourceId": idOf(arn), "resourceType": resourceTypes[kind]},
	}
}

// validation is a ValidationException about one input field.
func validation(field, format string, args ...any) *awsapi.Error {
	return awsapi.FieldValidation(field, format, args...)
}

func quotaExceeded(kind, account string, limit int) *awsapi.Error {
	return &awsapi.Error{
		Code:    awsapi.CodeQuotaExceeded,
		Message: fmt.Sprintf("The %s quota of %d per account has been reached.", kindNames[kind], limit),
		Fields:  map[string]any{"resourceId": account, "resourceType": resourceTypes[kind], "limit": limit},
	}
}

// storeError maps store errors that a handler did not handle itself.
func storeError(err error) error { return awsapi.StoreError(err, "ivschat", notFound) }
