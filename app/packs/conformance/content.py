"""Tools, resources and prompts that return each kind of content (text, image, audio, embedded resource)."""

from __future__ import annotations

import base64
import json
from typing import Annotated, Any

from mcp.server.mcpserver.prompts.base import UserMessage
from mcp.types import AudioContent, EmbeddedResource, ImageContent, TextContent, TextResourceContents
from pydantic import Field

from app.packs.api import PackContext

# A 1x1 PNG and a minimal WAV, as the suite expects.
TEST_IMAGE_BASE64 = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg=="
TEST_AUDIO_BASE64 = "UklGRiYAAABXQVZFZm10IBAAAAABAAEAQB8AAAB9AAACABAAZGF0YQIAAAA="

JSON_SCHEMA_2020_12: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "$defs": {
        "address": {
            "$anchor": "addressDef",
            "type": "object",
            "properties": {"street": {"type": "string"}, "city": {"type": "string"}},
        }
    },
    "properties": {
        "name": {"type": "string"},
        "address": {"$ref": "#/$defs/address"},
        "contactMethod": {"type": "string", "enum": ["phone", "email"]},
        "phone": {"type": "string"},
        "email": {"type": "string"},
    },
    "allOf": [{"anyOf": [{"required": ["phone"]}, {"required": ["email"]}]}],
    "if": {"properties": {"contactMethod": {"const": "phone"}}, "required": ["contactMethod"]},
    "then": {"required": ["phone"]},
    "else": {"required": ["email"]},
    "additionalProperties": False,
}


def _image() -> ImageContent:
    return ImageContent(type="image", data=TEST_IMAGE_BASE64, mime_type="image/png")


def register(pack: PackContext[Any], scopes: tuple[str, ...]) -> None:
    @pack.tool(scopes=scopes, description="Tests simple text content response")
    def test_simple_text() -> str:
        return "This is a simple text response for testing."

    @pack.tool(scopes=scopes, description="Tests image content response")
    def test_image_content() -> list[ImageContent]:
        return [_image()]

    @pack.tool(scopes=scopes, description="Tests audio content response")
    def test_audio_content() -> list[AudioContent]:
        return [AudioContent(type="audio", data=TEST_AUDIO_BASE64, mime_type="audio/wav")]

    @pack.tool(scopes=scopes, description="Tests embedded resource content response")
    def test_embedded_resource() -> list[EmbeddedResource]:
        resource = TextResourceContents(
            uri="test://embedded-resource", mime_type="text/plain", text="This is an embedded resource content."
        )
        return [EmbeddedResource(type="resource", resource=resource)]

    @pack.tool(scopes=scopes, description="Tests response with multiple content types (text, image, resource)")
    def test_multiple_content_types() -> list[TextContent | ImageContent | EmbeddedResource]:
        resource = TextResourceContents(
            uri="test://mixed-content-resource", mime_type="application/json", text='{"test": "data", "value": 123}'
        )
        return [
            TextContent(type="text", text="Multiple content types test:"),
            _image(),
            EmbeddedResource(type="resource", resource=resource),
        ]

    @pack.tool(scopes=scopes, description="Tests error response handling")
    def test_error_handling() -> str:
        raise RuntimeError("This tool intentionally returns an error for testing")

    @pack.tool(
        "json_schema_2020_12_tool",
        scopes=scopes,
        description="Tool with JSON Schema 2020-12 features",
        input_schema=JSON_SCHEMA_2020_12,
    )
    def json_schema_2020_12_tool() -> str:
        return "json_schema_2020_12_tool"

    @pack.tool(scopes=scopes, description="Tests SEP-2243 Mcp-Param-* server-side validation.")
    def test_x_mcp_header(
        region: Annotated[
            str,
            Field(
                description="Mirrored into the Mcp-Param-Region header",
                max_length=100,
                json_schema_extra={"x-mcp-header": "Region"},
            ),
        ] = "<none>",
    ) -> str:
        return f"region={region}"

    @pack.resource(
        scopes=scopes,
        uri="test://static-text",
        mime_type="text/plain",
        description="A static text resource for testing",
    )
    def static_text() -> str:
        return "This is the content of the static text resource."

    @pack.resource(
        scopes=scopes, uri="test://static-binary", mime_type="image/png", description="A static binary resource (image)"
    )
    def static_binary() -> bytes:
        return base64.b64decode(TEST_IMAGE_BASE64)

    @pack.resource(
        scopes=scopes,
        uri="test://template/{id}/data",
        mime_type="application/json",
        description="A resource template with parameter substitution",
    )
    def template_data(id: str) -> str:
        return json.dumps({"id": id, "templateTest": True, "data": f"Data for ID: {id}"})

    @pack.resource(
        scopes=scopes, uri="test://watched-resource", mime_type="text/plain", description="A resource to subscribe to"
    )
    def watched() -> str:
        return "Watched resource content"

    @pack.prompt(scopes=scopes, description="A simple prompt without arguments")
    def test_simple_prompt() -> list[UserMessage]:
        return [UserMessage(role="user", content=TextContent(type="text", text="This is a simple prompt for testing."))]

    @pack.prompt(scopes=scopes, description="A prompt with required arguments")
    def test_prompt_with_arguments(
        arg1: Annotated[str, Field(description="First test argument", max_length=1000)],
        arg2: Annotated[str, Field(description="Second test argument", max_length=1000)],
    ) -> list[UserMessage]:
        text = f"Prompt with arguments: arg1='{arg1}', arg2='{arg2}'"
        return [UserMessage(role="user", content=TextContent(type="text", text=text))]

    @pack.prompt(scopes=scopes, description="A prompt that includes an embedded resource")
    def test_prompt_with_embedded_resource(
        resourceUri: Annotated[str, Field(description="URI of the resource to embed", max_length=2000)],
    ) -> list[UserMessage]:
        resource = TextResourceContents(
            uri=resourceUri, mime_type="text/plain", text="Embedded resource content for testing."
        )
        return [
            UserMessage(role="user", content=EmbeddedResource(type="resource", resource=resource)),
            UserMessage(
                role="user", content=TextContent(type="text", text="Please process the embedded resource above.")
            ),
        ]

    @pack.prompt(scopes=scopes, description="A prompt that includes image content")
    def test_prompt_with_image() -> list[UserMessage]:
        return [
            UserMessage(role="user", content=_image()),
            UserMessage(role="user", content=TextContent(type="text", text="Please analyze the image above.")),
        ]
