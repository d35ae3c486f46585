"""WhatsApp messages: `POST /v2/messages/whatsapp` (contract §5.11) and its content (§6).

Validation. `whatsapp_message` is checked in two steps, both answering 422 with a JSON pointer to
the offending field (`/whatsapp_message/image/link`): the pydantic models (`models`) check shapes,
enums and lengths (FastAPI maps their errors, code 10015, missing fields 10004); `check_message`
checks what depends on `type`: the object named by `type` must be present and no other content
object may be (`type` may be left out when exactly one content object is given), and each kind
has its required fields — `text.body`; a media `link` that is an http(s) URL (captions only on
image, video and document, `filename` only on document, `voice` only on audio); `location`
coordinates as decimal strings within range; `reaction.message_id`; at least one contact, each
with `name.formatted_name`; `interactive` per its type (1–3 reply buttons with unique ids; a list
with a button label and 1–10 sections of at most 10 rows in all; `cta_url` parameters; a carousel
of 2–10 cards with unique `card_index` and an image or video header each; a flow with version "3",
a `flow_cta` and exactly one of `flow_id`/`flow_name`); a template named by `template_id` or by
`name` plus `language`, button components with `sub_type` and `index`. The accepted superset is
the Python SDK's (flows included).

Sending. `from` must be a phone number of the organization with WhatsApp enabled
(`phone_numbers.whatsapp_enabled`, CLI `signalpost numbers whatsapp enable`), else 40305. `to` is
a +E.164 number or a business-scoped user id (`US.13491208655302741918`), else 40310. The message
belongs to `messaging_profile_id` when given (it must be the organization's), else to the
number's profile; without either, 10004. The stored message has `type` WHATSAPP, `encoding`
`utf-8` and `body` = the validated `whatsapp_message`; it goes through the same lifecycle and
webhooks as an SMS (`message.sent`, `message.finalized`) followed, once the recipient has read it,
by `message.read` (`to[].status` `read`). signalpost has no WhatsApp Business upstream: WhatsApp
traffic always goes through the carrier simulator, whatever carrier SMS use, and the simulated
recipient reads a delivered message `READ_DELAY` seconds after its delivery receipt.

Send response (`MessageWhatsappResponse`): `id`, `record_type`, `direction`, `type` WHATSAPP,
`encoding` utf-8, `from` with `status` `received`, `to[]` with `status` `queued`, `body`,
`messaging_profile_id`, `organization_id`, `received_at`, `wait_seconds`. The SDK's response model
for `body` is narrower than its request model, so the echo in the send response only is adapted to
validate in strict clients: a contact's `name` object is given as its `formatted_name` string, and
the enum values that model lacks (interactive type `flow`, template component `sub_type` `flow`,
parameter type `action`) are left out. `GET /v2/messages/{id}` and the webhooks carry the body as
sent, except that their model (`OutboundMessagePayload.body`) types `text` as a string, so a text
message's `text` object is given there as its `body` string (`schemas.outbound_body`).

Inbound. A simulated handset's WhatsApp message (`POST /simulator/inbound` with a
`whatsapp_message` of the same shape) arrives as `message.received` with `type` WHATSAPP, `to` the
receiving number as one string, and `body` = `{id, foreign_id, from, timestamp, type, <content>}`
as Telnyx forwards it (text as `{"body": ...}`, location coordinates as numbers).

Modules: `models` (request models), `validation` (`parse_message`, `check_message`), `wire` (the
stored, response and forwarded bodies), `send` (accepting a message; `channel`), `read` (simulated
read receipts and their job), `inbound` (a simulated handset's WhatsApp message).
"""
