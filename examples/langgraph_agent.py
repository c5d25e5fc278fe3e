"""A LangGraph agent (langchain.agents.create_agent) with the isorun sandbox tools.

The model here is scripted so the example runs offline; swap in a real one,
e.g. ``init_chat_model("openai:gpt-5")``, and drop the script.
"""

from langchain.agents import create_agent
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage

from isorun_langchain import isorun_tools


class ScriptedChatModel(GenericFakeChatModel):
    """Answers with the scripted messages; a real chat model decides instead."""

    def bind_tools(self, tools, *, tool_choice=None, **kwargs):  # type: ignore[no-untyped-def]
        return self


def call(name: str, call_id: str, **args: str) -> dict:
    return {"name": name, "args": args, "id": call_id, "type": "tool_call"}


model = ScriptedChatModel(
    messages=iter(
        [
            AIMessage("", tool_calls=[call("shell", "c1", command="seq 1 10 > /tmp/n.txt")]),
            AIMessage(
                "",
                tool_calls=[
                    call(
                        "code_interpreter",
                        "c2",
                        code="print(sum(int(x) for x in open('/tmp/n.txt')))",
                    )
                ],
            ),
            AIMessage("The numbers 1 to 10 add up to 55."),
        ]
    )
)

with isorun_tools(image="python:3.12-slim") as toolkit:  # the sandbox is made on first use
    agent = create_agent(model, tools=toolkit.tools, system_prompt="Use the sandbox.")
    result = agent.invoke({"messages": [HumanMessage("Add up the numbers 1 to 10.")]})
    for message in result["messages"]:
        if isinstance(message, ToolMessage):
            print(f"{message.name} -> {message.content!r}")  # code_interpreter -> '55'
    print(result["messages"][-1].content)
# leaving the block destroyed the sandbox
