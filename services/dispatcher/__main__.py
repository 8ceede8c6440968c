from services.dispatcher.app import create_app
from services.dispatcher.settings import DispatcherSettings
from shared.service import run

settings = DispatcherSettings()
run(create_app(settings), settings, settings.dispatcher_port)
