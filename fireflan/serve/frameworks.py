"""An agent framework no one here wrote, driving a served fireflan model with fireflan's tools: the OpenAI
Agents SDK (`pip install openai-agents`; in the dev extra).

    agent, calls = sdk_agent("http://127.0.0.1:8000/v1", tool=make_tool("world", []))
    agents.Runner.run_sync(agent, "Who directed The Last Nafern?").final_output

The tools are the environment's own (fireflan.agent.toolcalls.TOOLS schemas, run by the tool's `step`),
declared to the SDK as function tools; the SDK sends OpenAI tool calls and tool results, which the server
renders as the model's trained conversation (fireflan.serve.reply).
"""

from __future__ import annotations

from fireflan.agent.toolcalls import call_argument, tools_for
from fireflan.tools.actions import ACTION_NAMES

INSTRUCTIONS = "Answer the question. Use the tools to find what you need."


def sdk_agent(base_url: str, tool, actions=ACTION_NAMES, model: str = "fireflan", tool_choice: str | None = None,
              instructions: str = INSTRUCTIONS):
    """(an Agents SDK agent on the served model with `tool`'s actions as function tools, the list each call
    is appended to as (name, argument, observation)). `tool_choice`: the SDK's first-turn choice (it is
    reset to auto after a call)."""
    from agents import Agent, FunctionTool, ModelSettings, OpenAIChatCompletionsModel, set_tracing_disabled
    from openai import AsyncOpenAI

    set_tracing_disabled(True)  # else the SDK sends its traces to OpenAI's servers
    calls: list[tuple[str, str, str]] = []

    def invoker(name: str):
        async def invoke(context, arguments: str) -> str:
            argument = call_argument(arguments)
            observation = tool.step(name, argument).text
            calls.append((name, argument, observation))
            return observation

        return invoke

    functions = [FunctionTool(name=s["function"]["name"], description=s["function"]["description"],
                              params_json_schema=s["function"]["parameters"], strict_json_schema=False,
                              on_invoke_tool=invoker(s["function"]["name"])) for s in tools_for(actions)]
    client = AsyncOpenAI(base_url=base_url, api_key="none", max_retries=0)
    agent = Agent(name="fireflan", instructions=instructions, tools=functions,
                  model=OpenAIChatCompletionsModel(model=model, openai_client=client),
                  model_settings=ModelSettings(tool_choice=tool_choice, temperature=0.0))
    return agent, calls
