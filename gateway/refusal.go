package gateway

import (
	"errors"
	"fmt"

	"github.com/trustgate/trustgate/internal/safetext"
)

// Steps of the start-up, in order; a Refusal names the one that refused.
const (
	StepSelf   = "self"
	StepPolicy = "policy"
	StepConfig = "config"
	StepVerify = "verify"
	StepStart  = "start"
	StepListen = "listen"
)

// ErrRefused is wrapped by every Refusal: the gateway did not start because
// something did not verify.
var ErrRefused = errors.New("refused")

// Refusal says why the gateway refused to start: the step, the component
// (kind/name, or what the step was about), the rule, and the expected and
// found values where there are any.
type Refusal struct {
	Step, Component, Rule, Expected, Found string
	Err                                    error
}

func (r *Refusal) Error() string {
	msg := fmt.Sprintf("refused at %s: %s", r.Step, r.Component)
	if r.Rule != "" {
		msg += ": " + r.Rule
	}
	if r.Expected != "" || r.Found != "" {
		msg += fmt.Sprintf(": expected %s, found %s", safetext.Quote(r.Expected), safetext.Quote(r.Found))
	}
	if r.Err != nil {
		msg += ": " + safetext.Line(r.Err.Error())
	}
	return msg
}

// Unwrap gives ErrRefused and the cause, for errors.Is.
func (r *Refusal) Unwrap() []error {
	if r.Err == nil {
		return []error{ErrRefused}
	}
	return []error{ErrRefused, r.Err}
}

func refuse(step, component string, err error) *Refusal {
	return &Refusal{Step: step, Component: component, Err: err}
}
