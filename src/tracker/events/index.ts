export { createLocalEventBus, type EventBus, type TrackerEvent, type TrackerEventHandler } from './bus.js';
