from services.chat.app import create_app
from services.chat.settings import ChatSettings
from shared.service import run

settings = ChatSettings()
run(create_app(settings), settings, settings.chat_port)
