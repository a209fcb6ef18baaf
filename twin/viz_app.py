"""The Solara entry point of ``twin viz`` (``solara run twin.viz_app``): the page for the scenario asked for."""
from twin.viz import page_from_environment

page = page_from_environment()
