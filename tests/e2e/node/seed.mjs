// Every operation of the product brief, through the official Node SDK (run by test_node_sdk.py).
import Telnyx from 'telnyx';
const client = new Telnyx({ maxRetries: 0 });
const log = (name, v) => console.log('OK', name, JSON.stringify(v).slice(0, 120));
const fail = (name, e) => { console.log('FAIL', name, e?.status, JSON.stringify(e?.error ?? e?.message)); process.exitCode = 1; };
async function step(name, fn) { try { log(name, await fn()); } catch (e) { fail(name, e); } }

const profile = (await client.messagingProfiles.create({
  name: 'node seed', whitelisted_destinations: ['US'], webhook_url: process.env.HOOK,
  number_pool_settings: { long_code_weight: 1, toll_free_weight: 1, skip_unhealthy: false },
})).data;
const FROM = process.env.FROM, SHORT = process.env.SHORT, MOBILE = process.env.MOBILE;
await client.phoneNumbers.messaging.update(FROM, { messaging_profile_id: profile.id });
await client.phoneNumbers.messaging.update(MOBILE, { messaging_profile_id: profile.id });
await fetch(`${process.env.TELNYX_BASE_URL}/short_codes/${process.env.SHORT_ID}`, {
  method: 'PATCH', headers: { Authorization: `Bearer ${process.env.TELNYX_API_KEY}`, 'Content-Type': 'application/json' },
  body: JSON.stringify({ messaging_profile_id: profile.id }),
});

let sentId;
await step('messages.send', async () => { const r = await client.messages.send({ from: FROM, to: '+18445550001', text: 'hello' }); sentId = r.data.id; return r.data.to; });
await step('messages.retrieve', async () => (await client.messages.retrieve(sentId)).data.direction);
let schedId;
await step('messages.schedule', async () => { const r = await client.messages.schedule({ from: FROM, to: '+18445550001', text: 'later', send_at: new Date(Date.now() + 10 * 60000).toISOString() }); schedId = r.data.id; return r.data.to; });
await step('messages.cancelScheduled', async () => (await client.messages.cancelScheduled(schedId)).to);
await step('messages.whatsapp', async () => (await client.messages.whatsapp({ from: FROM, to: '+13125550199', whatsapp_message: { type: 'text', text: { body: 'hi' } } })).data.type);
if (typeof client.messages.sendWhatsapp === 'function') await step('messages.sendWhatsapp', async () => (await client.messages.sendWhatsapp({ from: FROM, to: '+13125550199', whatsapp_message: { type: 'text', text: { body: 'hi' } } })).data.type);
await step('messages.sendGroupMms', async () => (await client.messages.sendGroupMms({ from: FROM, to: ['+18655551234', '+14155551234'], text: 'group' })).data.to);
await step('messages.sendLongCode', async () => (await client.messages.sendLongCode({ from: FROM, to: '+13125550002', text: 'lc' })).data.to);
await step('messages.sendNumberPool', async () => (await client.messages.sendNumberPool({ messaging_profile_id: profile.id, to: '+13125550002', text: 'pool' })).data.from);
await step('messages.sendShortCode', async () => (await client.messages.sendShortCode({ from: SHORT, to: '+13125550003', text: 'sc' })).data.from);
await step('messagingOptouts.list', async () => { const out = []; for await (const o of client.messagingOptouts.list()) out.push(o); return out.length; });
await step('phoneNumbers.messaging.retrieve', async () => (await client.phoneNumbers.messaging.retrieve(FROM)).data.phone_number);
await step('phoneNumbers.messaging.update', async () => (await client.phoneNumbers.messaging.update(FROM, { tags: ['node'] })).data.tags);
await step('phoneNumbers.messaging.list', async () => { const out = []; for await (const n of client.phoneNumbers.messaging.list()) out.push(n.id); return out.length; });
await step('mobilePhoneNumbers.messaging.retrieve', async () => (await client.mobilePhoneNumbers.messaging.retrieve(MOBILE)).data.phone_number);
await step('mobilePhoneNumbers.messaging.list', async () => { const out = []; for await (const n of client.mobilePhoneNumbers.messaging.list()) out.push(n.id); return out.length; });
let orderId;
await step('messagingNumbersBulkUpdates.create', async () => { const r = await client.messagingNumbersBulkUpdates.create({ messaging_profile_id: profile.id, numbers: [FROM, '+18880000000'] }); orderId = r.data.order_id; return r.data; });
await step('messagingNumbersBulkUpdates.retrieve', async () => {
  for (let i = 0; i < 100; i++) {
    const r = (await client.messagingNumbersBulkUpdates.retrieve(orderId)).data;
    if (r.pending.length === 0) return r;
    await new Promise(res => setTimeout(res, 100));
  }
  throw new Error('bulk update still pending');
});
await step('autorespConfigs.delete', async () => { const c = await client.messagingProfiles.autorespConfigs.create(profile.id, { op: 'stop', keywords: ['HALT'], country_code: 'US' }); return await client.messagingProfiles.autorespConfigs.delete(c.data.id, { profile_id: profile.id }); });
