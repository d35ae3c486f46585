"""WhatsApp request models: the Python SDK's `MessageWhatsappParams` (a superset of the TS one)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

CONTENT_TYPES = (
    "audio",
    "document",
    "image",
    "sticker",
    "video",
    "interactive",
    "location",
    "template",
    "reaction",
    "contacts",
    "text",
)
MEDIA_TYPES = ("audio", "document", "image", "sticker", "video")
ENCODING = "utf-8"

ContentType = Literal[
    "audio",
    "document",
    "image",
    "sticker",
    "video",
    "interactive",
    "location",
    "template",
    "reaction",
    "contacts",
    "text",
]


# --- request models (the Python SDK's `MessageWhatsappParams`, a superset of the TS one) ---------


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)


Text = Annotated[str, Field(max_length=4096)]


class WhatsappMedia(_Model):
    link: str | None = None
    caption: Annotated[str, Field(max_length=1024)] | None = None
    filename: Annotated[str, Field(max_length=240)] | None = None
    voice: bool | None = None


class WhatsappText(_Model):
    body: Text
    preview_url: bool | None = None


class WhatsappLocation(_Model):
    latitude: str | None = None
    longitude: str | None = None
    name: Annotated[str, Field(max_length=1000)] | None = None
    address: Annotated[str, Field(max_length=1000)] | None = None


class WhatsappReaction(_Model):
    message_id: str | None = None
    emoji: Annotated[str, Field(max_length=16)] | None = None


class ContactName(_Model):
    formatted_name: str
    first_name: str | None = None
    last_name: str | None = None
    middle_name: str | None = None
    prefix: str | None = None
    suffix: str | None = None


class ContactAddress(_Model):
    street: str | None = None
    city: str | None = None
    state: str | None = None
    zip: str | None = None
    country: str | None = None
    country_code: str | None = None
    type: str | None = None


class ContactEmail(_Model):
    email: str | None = None
    type: str | None = None


class ContactOrg(_Model):
    company: str | None = None
    department: str | None = None
    title: str | None = None


class ContactPhone(_Model):
    phone: str | None = None
    type: str | None = None
    wa_id: str | None = None


class ContactUrl(_Model):
    url: str | None = None
    type: str | None = None


class WhatsappContact(_Model):
    name: ContactName | None = None
    birthday: str | None = None
    addresses: list[ContactAddress] | None = None
    emails: list[ContactEmail] | None = None
    org: ContactOrg | None = None
    phones: list[ContactPhone] | None = None
    urls: list[ContactUrl] | None = None


class ButtonReply(_Model):
    id: Annotated[str, Field(max_length=256)] | None = None
    title: Annotated[str, Field(max_length=20)] | None = None


class ActionButton(_Model):
    type: Literal["reply"] | None = None
    reply: ButtonReply | None = None


class CardHeader(_Model):
    type: Literal["image", "video"] | None = None
    image: WhatsappMedia | None = None
    video: WhatsappMedia | None = None


class CardBody(_Model):
    text: Annotated[str, Field(max_length=160)] | None = None


class CardAction(_Model):
    catalog_id: str | None = None
    product_retailer_id: str | None = None


class ActionCard(_Model):
    card_index: Annotated[int, Field(ge=0, le=9)] | None = None
    type: Literal["cta_url"] | None = None
    header: CardHeader | None = None
    body: CardBody | None = None
    action: CardAction | None = None


class SectionRow(_Model):
    id: Annotated[str, Field(max_length=200)] | None = None
    title: Annotated[str, Field(max_length=24)] | None = None
    description: Annotated[str, Field(max_length=72)] | None = None


class ProductItem(_Model):
    product_retailer_id: str | None = None


class ActionSection(_Model):
    title: Annotated[str, Field(max_length=24)] | None = None
    rows: list[SectionRow] | None = None
    product_items: list[ProductItem] | None = None


class FlowActionPayload(_Model):
    screen: str | None = None
    data: dict[str, Any] | None = None


class ActionParameters(_Model):
    display_text: Annotated[str, Field(max_length=20)] | None = None
    url: str | None = None
    flow_id: str | None = None
    flow_name: str | None = None
    flow_cta: Annotated[str, Field(max_length=20)] | None = None
    flow_message_version: str | None = None
    flow_token: str | None = None
    flow_action: Literal["navigate", "data_exchange"] | None = None
    flow_action_payload: FlowActionPayload | None = None
    mode: Literal["draft", "published"] | None = None


class InteractiveAction(_Model):
    button: Annotated[str, Field(max_length=20)] | None = None
    buttons: list[ActionButton] | None = None
    sections: list[ActionSection] | None = None
    cards: list[ActionCard] | None = None
    catalog_id: str | None = None
    product_retailer_id: str | None = None
    name: str | None = None
    mode: str | None = None
    parameters: ActionParameters | None = None


class InteractiveHeader(_Model):
    type: Literal["document", "image", "text", "video"]
    text: Annotated[str, Field(max_length=60)] | None = None
    sub_text: Annotated[str, Field(max_length=60)] | None = None
    image: WhatsappMedia | None = None
    video: WhatsappMedia | None = None
    document: WhatsappMedia | None = None


class InteractiveBody(_Model):
    text: Annotated[str, Field(max_length=1024)] | None = None


class InteractiveFooter(_Model):
    text: Annotated[str, Field(max_length=60)] | None = None


class WhatsappInteractive(_Model):
    type: (
        Literal["cta_url", "list", "carousel", "button", "location_request_message", "flow"] | None
    ) = None
    header: InteractiveHeader | None = None
    body: InteractiveBody | None = None
    footer: InteractiveFooter | None = None
    action: InteractiveAction | None = None


class TemplateLanguage(_Model):
    code: str
    policy: str | None = None


class TemplateParameterAction(_Model):
    flow_token: str | None = None
    flow_action_data: dict[str, Any] | None = None


class TemplateParameter(_Model):
    type: (
        Literal["text", "image", "video", "document", "currency", "date_time", "action"] | None
    ) = None
    text: str | None = None
    action: TemplateParameterAction | None = None
    # Meta's own parameter payloads for the non-text kinds (not in the SDK types; accepted as given).
    image: WhatsappMedia | None = None
    video: WhatsappMedia | None = None
    document: WhatsappMedia | None = None
    currency: dict[str, Any] | None = None
    date_time: dict[str, Any] | None = None


class TemplateComponent(_Model):
    type: Literal["header", "body", "button"] | None = None
    sub_type: Literal["quick_reply", "url", "flow"] | None = None
    index: Annotated[int, Field(ge=0, le=9)] | None = None
    parameters: list[TemplateParameter] | None = None


class WhatsappTemplate(_Model):
    template_id: str | None = None
    name: Annotated[str, Field(max_length=512)] | None = None
    language: TemplateLanguage | None = None
    components: list[TemplateComponent] | None = None


class WhatsappMessage(_Model):
    """`whatsapp_message`: `type` names the sibling object that carries the content."""

    type: ContentType | None = None
    text: WhatsappText | None = None
    image: WhatsappMedia | None = None
    audio: WhatsappMedia | None = None
    video: WhatsappMedia | None = None
    document: WhatsappMedia | None = None
    sticker: WhatsappMedia | None = None
    location: WhatsappLocation | None = None
    reaction: WhatsappReaction | None = None
    contacts: list[WhatsappContact] | None = None
    interactive: WhatsappInteractive | None = None
    template: WhatsappTemplate | None = None
    biz_opaque_callback_data: Annotated[str, Field(max_length=512)] | None = None


class WhatsappSend(_Model):
    """`POST /messages/whatsapp`."""

    from_: str = Field(alias="from")
    to: str
    whatsapp_message: WhatsappMessage
    messaging_profile_id: str | None = None
    type: Literal["WHATSAPP"] | None = None
    webhook_url: str | None = None
