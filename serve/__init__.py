"""serve: the OpenAI-compatible gateway, its engines, the Gradio A/B page and user feedback.

    tunebot serve runs/acme-demo --ui
"""
