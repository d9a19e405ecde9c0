"""GraphQL documents and helpers for the owner's contacts, meetings and tasks."""

from __future__ import annotations

from typing import Any

from tests.support.live_server import LiveServer

MEETING_FIELDS = "id title start end source calendarInvitationSent contact { id email }"
TASK_FIELDS = "id title due done inCalendar contact { id email }"
CONTACT_FIELDS = f"""
fragment ContactFields on Contact {{
  id email name properties {{ key value }}
  meetings {{ {MEETING_FIELDS} }}
  tasks {{ id title }}
}}
"""
ERRORS = """
  ... on Error { message }
  ... on InvalidInput { field }
  ... on ContactExists { contactId }
"""
CREATE_CONTACT = (
    "mutation($input: CreateContactInput!) { createContact(input: $input) { __typename ...ContactFields "
    + ERRORS
    + "} }"
    + CONTACT_FIELDS
)
UPDATE_CONTACT = (
    "mutation($id: ID!, $input: UpdateContactInput!) { updateContact(id: $id, input: $input) {"
    " __typename ...ContactFields " + ERRORS.replace("... on ContactExists { contactId }", "") + "} }" + CONTACT_FIELDS
)
CONTACTS = "query($search: String) { me { contacts(search: $search) { ...ContactFields } } }" + CONTACT_FIELDS
CONTACT = "query($email: String!) { me { contact(email: $email) { ...ContactFields } } }" + CONTACT_FIELDS
MEETING_RESULT = (
    f"__typename ... on Meeting {{ {MEETING_FIELDS} }} ... on Error {{ message }} ... on InvalidInput {{ field }}"
)
CREATE_MEETING = "mutation($input: CreateMeetingInput!) { createMeeting(input: $input) { " + MEETING_RESULT + " } }"
UPDATE_MEETING = (
    "mutation($id: ID!, $input: UpdateMeetingInput!) { updateMeeting(id: $id, input: $input) { "
    + MEETING_RESULT
    + " } }"
)
DELETE_MEETING = """
mutation($id: ID!) {
  deleteMeeting(id: $id) { __typename ... on Deleted { id } ... on Error { message } ... on InvalidInput { field } }
}
"""
TASK_RESULT = f"__typename ... on Task {{ {TASK_FIELDS} }} ... on Error {{ message }} ... on InvalidInput {{ field }}"
CREATE_TASK = "mutation($input: CreateTaskInput!) { createTask(input: $input) { " + TASK_RESULT + " } }"
UPDATE_TASK = (
    "mutation($id: ID!, $input: UpdateTaskInput!) { updateTask(id: $id, input: $input) { " + TASK_RESULT + " } }"
)
DELETE_TASK = "mutation($id: ID!) { deleteTask(id: $id) { __typename ... on Deleted { id } ... on Error { message } } }"
TASKS = "query { me { tasks { " + TASK_FIELDS + " } } }"


async def answer(server: LiveServer, document: str, token: str, **variables: Any) -> dict[str, Any]:
    """The one root field's answer of a document that must not fail as a whole."""
    result = await server.graphql(document, variables, token=token)
    assert "errors" not in result, result
    (value,) = result["data"].values()
    return dict(value)


async def create_contact(server: LiveServer, token: str, email: str, **fields: Any) -> dict[str, Any]:
    return await answer(server, CREATE_CONTACT, token, input={"email": email, **fields})


async def contacts(server: LiveServer, token: str, search: str | None = None) -> list[dict[str, Any]]:
    me = await answer(server, CONTACTS, token, search=search)
    return list(me["contacts"])


async def contact(server: LiveServer, token: str, email: str) -> dict[str, Any] | None:
    me = await answer(server, CONTACT, token, email=email)
    return me["contact"]  # type: ignore[no-any-return]


async def create_meeting(
    server: LiveServer, token: str, contact_id: str, start: str, end: str, **extra: Any
) -> dict[str, Any]:
    meeting = {"contactId": contact_id, "title": "Quarterly review", "start": start, "end": end, **extra}
    return await answer(server, CREATE_MEETING, token, input=meeting)
