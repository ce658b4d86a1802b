// The entry of the peer's messaging: sends with their outbox, the inbox, receipts and topics.
export {
  createMessagingService,
  type MessageCommands,
  type MessagingService,
  UNREAD_PAGE,
} from './messaging.js';
